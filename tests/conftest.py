"""Fixtures and hooks: the real Fashion-MNIST location, and the order the test files run in."""

from __future__ import annotations

from pathlib import Path

import pytest

from betavae.base.errors import DataError
from betavae.base.files import cache_path
from betavae.data.idx import SYSTEM_DIR, locate


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Directory of the real Fashion-MNIST files (Debian's dataset-fashion-mnist, or $BETAVAE_DATA); the tests
    that need it are skipped, with the reason, where it is missing."""
    try:
        files = locate(cache_path("BETAVAE_DATA"), SYSTEM_DIR, download=False)
    except DataError as err:
        pytest.skip(f"real Fashion-MNIST is needed for this test (run `make data`): {err}")
    return next(iter(files.values())).parent


LONGEST_FIRST = ["test_slurm", "test_trackers", "test_devices", "test_loggers", "test_fid", "test_train",
                 "test_shapes_runs", "test_summary", "test_data_contract", "test_evaluate", "test_run_dirs",
                 "test_sweeps", "test_registry", "test_disentanglement", "test_api"]  # fmt: skip  # --durations


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files that take longest first, so two xdist workers (make test, whole files each) finish together
    instead of one starting the Slurm file when the other is nearly done."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))
