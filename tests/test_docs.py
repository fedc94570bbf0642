"""The README and the documentation site: the README's commands are the ones CI runs, its links
resolve, and the app's Help menu shows the site's user-guide pages in the site's order.
(`mkdocs build --strict` checks the site's own links, pages and API reference.)"""

import re
from pathlib import Path

from arfl_studio.bundled import GUIDE_PAGES, guide_dir, guide_pages

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_commands_are_the_set_up_and_the_test_command_ci_runs():
    commands = _readme_commands()
    assert 'python -m pip install -e . && arfl-studio' in commands
    test_command = 'python -m pip install -e ".[test]" && python -m pytest'
    assert test_command in commands
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_is_short_and_its_links_resolve():
    assert len(README.splitlines()) <= 200  # a front page; the manual is docs/
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+://", t)]
    assert any(t.startswith("docs/") for t in local)
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_help_shows_the_user_guide_pages_in_the_site_order():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = re.findall(r"^\s*- [^:\n]+: ([\w./-]+\.md)\s*$", nav, re.M)
    assert tuple(p for p in listed if p != "index.md" and not p.startswith("reference/")) == GUIDE_PAGES
    assert guide_dir() == ROOT / "docs"
    titles = [title for title, _text in guide_pages()]
    assert len(titles) == len(GUIDE_PAGES)
    assert "The desktop app" in titles and "Running experiments" in titles
    assert all(text.startswith(f"# {title}\n") for title, text in guide_pages())
