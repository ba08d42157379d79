"""Worker settings: thread shares, the environment handed to spawned workers and its restoration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.metrics import MULTIPROC_ENV
from api.workers import (
    SETTINGS_ENV,
    THREAD_ENV,
    ServeSettings,
    limit_threads,
    run_directory,
    threads_per_worker,
    worker_environment,
)


def test_each_worker_gets_its_share_of_the_cores_and_at_least_one() -> None:
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(4, cores=2) == 1
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        threads_per_worker(0, cores=2)


def test_worker_environment_carries_the_settings_and_is_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (SETTINGS_ENV, MULTIPROC_ENV, *THREAD_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")  # the user's own setting wins
    with run_directory() as run_dir:
        settings = ServeSettings(
            indexes={"scifact": tmp_path}, max_query_chars=500, threads=3, run_dir=run_dir
        )
        with worker_environment(settings):
            assert ServeSettings.model_validate_json(os.environ[SETTINGS_ENV]) == settings
            assert os.environ[MULTIPROC_ENV] == str(run_dir / "metrics")
            assert (run_dir / "metrics").is_dir()
            assert os.environ["OMP_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "3"
            assert os.environ["MKL_NUM_THREADS"] == "7"
        assert SETTINGS_ENV not in os.environ and MULTIPROC_ENV not in os.environ
        assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "7"
    assert not run_dir.exists()


def test_workers_need_a_run_directory(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="run_dir"),
        worker_environment(ServeSettings(indexes={"a": tmp_path})),
    ):
        pass


def test_limit_threads_sizes_torch_when_it_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    try:
        limit_threads(1)
        assert torch.get_num_threads() == 1
        assert all(os.environ[name] == "1" for name in THREAD_ENV)
    finally:
        torch.set_num_threads(before)
