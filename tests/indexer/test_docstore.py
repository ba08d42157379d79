"""DocStore: roundtrip, absent ids, unicode, listed files and concurrent read-only readers."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from indexer.docstore import DocStore

RECORDS = [
    ("d1", {"title": "Toy Story", "year": 1995, "tags": ["pixar", "animation"]}),
    ("d2", {"title": "Jumanji", "score": 3.5, "nested": {"a": [1, 2]}}),
    ("文档3", {"title": "北京烤鸭的做法", "text": "先把鸭子洗干净。"}),
    ("é/ü id with spaces", {"title": "", "empty": None}),
]


def _digests(path: Path) -> dict[str, str]:
    return {name: hashlib.sha256((path / name).read_bytes()).hexdigest() for name in DocStore.files(path)}


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "docstore"
    DocStore.write(path, RECORDS, batch_size=2)  # two full batches: exercises the batching
    return path


def test_roundtrip_and_unicode(store_path: Path) -> None:
    with DocStore.open(store_path) as store:
        assert len(store) == store.count() == len(RECORDS)
        for item_id, record in RECORDS:
            assert store.get(item_id) == record
        assert store.get("文档3")["title"] == "北京烤鸭的做法"
        assert sorted(store.ids()) == sorted(item_id for item_id, _ in RECORDS)


def test_missing_ids_and_get_many_order(store_path: Path) -> None:
    with DocStore.open(store_path) as store:
        assert store.get("nope") is None
        assert "nope" not in store and "d1" in store
        got = store.get_many(["d2", "nope", "d1", "文档3"])
        assert got == [RECORDS[1][1], None, RECORDS[0][1], RECORDS[2][1]]
        assert store.get_many([]) == []


def test_write_many_records_counts_every_batch(tmp_path: Path) -> None:
    records = ((f"id{i:05d}", {"n": i, "x": np.float32(i) / 2}) for i in range(2345))
    DocStore.write(tmp_path / "big", records, batch_size=1000)
    with DocStore.open(tmp_path / "big") as store:
        assert len(store) == 2345
        assert store.get("id02344") == {"n": 2344, "x": 1172.0}
        assert [r["n"] for r in store.get_many(["id00000", "id01000", "id02000"])] == [0, 1000, 2000]


def test_files_are_listed_and_reading_does_not_change_them(store_path: Path) -> None:
    files = DocStore.files(store_path)
    assert "CURRENT" in files and any(name.endswith(".sst") for name in files)
    assert not any(name.startswith(("LOG", "LOCK")) for name in files)
    before = _digests(store_path)
    with DocStore.open(store_path) as store:
        store.get("d1")
    assert _digests(store_path) == before


def test_two_read_only_instances_at_once(store_path: Path) -> None:
    first = DocStore.open(store_path)
    second = DocStore.open(store_path)
    try:
        assert first.get("d1") == second.get("d1") == RECORDS[0][1]
    finally:
        first.close()
        second.close()


def test_read_only_in_another_process_while_open_here(store_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from indexer.docstore import DocStore
        with DocStore.open({str(store_path)!r}) as store:
            print(store.get("文档3")["title"], len(store))
        """
    )
    with DocStore.open(store_path) as store:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=Path(__file__).resolve().parents[2],
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"北京烤鸭的做法 {len(RECORDS)}"
        assert store.get("d2") == RECORDS[1][1]


def test_bad_input_is_refused(tmp_path: Path, store_path: Path) -> None:
    with pytest.raises(FileExistsError):
        DocStore.write(store_path, RECORDS)
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        DocStore.write(tmp_path / "dup", [("a", {}), ("b", {}), ("a", {})])
    with pytest.raises(ValueError, match="must be a dict"):
        DocStore.write(tmp_path / "notdict", [("a", ["x"])])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        DocStore.write(tmp_path / "batch", RECORDS, batch_size=0)
    with pytest.raises(FileNotFoundError):
        DocStore.open(tmp_path / "absent")


def test_closed_store_raises(store_path: Path) -> None:
    store = DocStore.open(store_path)
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        store.get("d1")
