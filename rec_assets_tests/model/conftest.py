"""Fixtures shared by the model tests."""

import pytest
import torch


@pytest.fixture
def one_cpu_thread():
    """The test machine is shared: spinning OpenMP threads under contention slow small models many times over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
