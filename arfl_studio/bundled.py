"""Files that ship with the program: example configs, the application icon and the user guide.

They live in the repository's ``resources/`` folder (the guide: ``docs/``). A wheel carries
them as ``arfl_studio/resources/`` (the guide as ``arfl_studio/resources/docs/``, see
setup.py), and the frozen app puts them at the same place inside the bundle; a source
checkout (or an editable install) finds them one level above the package.
"""

from __future__ import annotations

from pathlib import Path

APP_NAME = "ARFL Studio"
APP_ID = "io.github.arfl_studio.ArflStudio"  # reverse-DNS id used by the desktop entry and AppStream
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# The user guide's pages in reading order: the "User guide" and "Development" entries of
# mkdocs.yml's nav (tests/test_docs.py keeps the two lists equal).
GUIDE_PAGES = ("install.md", "gui.md", "method.md", "two-moons.md", "data.md", "experiments.md", "attacks.md", "speed.md", "development.md")


def resource_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources", here.parent / "resources"):
        if (candidate / "configs").is_dir():
            return candidate
    raise FileNotFoundError(
        f"the program's resources folder is missing (looked in {here / 'resources'} and {here.parent / 'resources'}); reinstall arfl-studio"
    )


def example_names() -> list[str]:
    return sorted(p.stem for p in (resource_dir() / "configs").glob("*.toml"))


def example_config(name: str) -> Path:
    """The bundled example config ``name`` (with or without ``.toml``)."""
    stem = name[:-5] if name.endswith(".toml") else name
    path = resource_dir() / "configs" / f"{stem}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no example config {name!r}; the examples are: {', '.join(example_names())}")
    return path


def resolve_config(text: str) -> Path:
    """A config argument: an existing file, else the name of a bundled example."""
    path = Path(text)
    if path.is_file():
        return path
    if path.parent == Path(".") and path.suffix in ("", ".toml"):
        try:
            return example_config(path.name)
        except FileNotFoundError:
            pass
    raise FileNotFoundError(f"no config file {text!r}, and no example of that name (examples: {', '.join(example_names())})")


def icon_path(size: int | None = None) -> Path:
    """The SVG icon, or the PNG rendering of one size."""
    icons = resource_dir() / "icons"
    return icons / ("arfl-studio.svg" if size is None else f"arfl-studio-{size}.png")


def guide_dir() -> Path | None:
    """The folder holding the user guide's Markdown pages, or None when they did not ship."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources" / "docs", here.parent / "docs"):
        if (candidate / GUIDE_PAGES[0]).is_file():
            return candidate
    return None


def guide_pages() -> list[tuple[str, str]]:
    """[(title, markdown)] for each page of the user guide, titled by its first ``# `` heading
    (headings inside code blocks skipped); [] when the pages are missing."""
    folder = guide_dir()
    if folder is None:
        return []
    pages = []
    for name in GUIDE_PAGES:
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except OSError:
            continue
        pages.append((_page_title(text) or name, text))
    return pages


def _page_title(markdown: str) -> str | None:
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            return line[2:].strip()
    return None
