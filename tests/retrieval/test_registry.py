"""The collection registry: concurrent reloads open each new version once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

from retrieval.registry import CollectionRegistry


def _fake_service(version: str) -> SimpleNamespace:
    ranker = SimpleNamespace(version="", stale=lambda: False)
    return SimpleNamespace(version=version, ranker=ranker, close=lambda: None)


def test_concurrent_reloads_open_a_new_version_once(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("v1")
    opened: list[str] = []

    def opener(root: Path, name: str, previous: object) -> SimpleNamespace:
        version = (root / "CURRENT").read_text()
        opened.append(version)
        if previous is not None:
            time.sleep(0.2)  # a slow load: without the lock, the other reload also sees the old version
        return _fake_service(version)

    registry = CollectionRegistry({"c": tmp_path}, opener=opener, retire_after_s=0.0)  # type: ignore[arg-type]
    registry.load()
    (tmp_path / "CURRENT").write_text("v2")
    results: list[list] = []
    threads = [threading.Thread(target=lambda: results.append(registry.reload())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert opened == ["v1", "v2"]
    assert sorted(len(switched) for switched in results) == [0, 1]
    assert registry.get("c").version == "v2"
