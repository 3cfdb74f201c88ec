"""Settings for the whole test session."""
import os


def pytest_configure(config):
    # Each pytest-xdist worker has one core of its own: more torch threads than cores slow every worker
    # several-fold (measured: 118 s against 23 s for tests/test_training_free.py under load).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
