"""numba's on-disk cache for the kernels: NUMBA_CACHE_DIR is honoured, and no writable place is no error."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba.core import caching

from indexer.inverted import jit

ROOT = Path(__file__).resolve().parents[2]
TINY = """
import numpy as np
from indexer.inverted.jit import njit

@njit
def total(a):
    return a.sum()

print(total(np.arange(4)), sum(total.stats.cache_hits.values()))
"""


def test_numba_cache_dir_is_used_and_read_back(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tiny.py").write_text(TINY, encoding="utf-8")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.run(
            [sys.executable, str(tmp_path / "src" / "tiny.py")], env=env, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout.split() == ["6", "0"]  # compiled
    assert list((tmp_path / "cache").rglob("*.nbi"))  # and written under NUMBA_CACHE_DIR
    assert runs[1].stdout.split() == ["6", "1"]  # the second process loaded it instead


def test_no_writable_cache_location_compiles_in_memory(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As where site-packages, NUMBA_CACHE_DIR and the user's cache folder are all read-only.
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])

    def double(a: np.ndarray) -> np.ndarray:
        return a * 2

    with caplog.at_level(logging.WARNING, logger="indexer.inverted.jit"):
        compiled = jit.njit(double)
    assert "cannot cache" in caplog.text
    np.testing.assert_array_equal(compiled(np.arange(3)), [0, 2, 4])
