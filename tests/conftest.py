import os

import pytest
import torch

# Two cores run the whole suite: keep each test single-threaded and Qt offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
