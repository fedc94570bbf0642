"""Where the real development data lives (kept out of the repository), for tests that use it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def mias_dev() -> Path:
    """The mini-MIAS development folder, found beside the repository or under /work/shared; else skip."""
    for candidate in (REPO.parent / "shared" / "realdata" / "mias-dev", Path("/work/shared/realdata/mias-dev")):
        if (candidate / "labels.csv").is_file():
            return candidate
    pytest.skip("real data absent: ../shared/realdata/mias-dev (or /work/shared/realdata/mias-dev) not found")
