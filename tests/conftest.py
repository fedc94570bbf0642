import os

import pytest
import torch

# Two cores run the whole suite: keep each test single-threaded and Qt offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _scan_cache_in_a_temporary_folder(tmp_path_factory):
    """Scans keep their header cache here, not in the user's data folder."""
    os.environ["ARFL_STUDIO_SCAN_CACHE"] = str(tmp_path_factory.mktemp("scan-cache"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_main_thread():
    """The app turns automatic GC off (it collects on the UI thread by timer); collect after
    each test here, on the main thread, so no cycle of Qt objects is left for a worker to free."""
    yield
    import gc

    if not gc.isenabled():
        gc.collect()
