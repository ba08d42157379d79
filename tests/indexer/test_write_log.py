"""The write-ahead log: records round-trip with their offsets, a torn tail is dropped and repaired, damage
elsewhere is refused, segments roll at a snapshot, and processes append to one log without losing a record."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
from pathlib import Path

import pytest

from indexer.write_log import HEADER, WriteLog, WriteLogError


def _payloads(log: WriteLog, since: int = 0) -> list[dict]:
    return [record.payload for record in log.read(since)]


def test_records_come_back_in_order_with_their_offsets(tmp_path: Path) -> None:
    log = WriteLog(tmp_path / "writes")
    assert log.end() == 0 and _payloads(log) == []
    first = log.append({"kind": "events", "n": 1})
    second = log.append({"kind": "delete", "id": "a/b", "text": "中文"})
    assert first.offset == 0 and second.offset == first.end and log.end() == second.end
    assert _payloads(log) == [{"kind": "events", "n": 1}, {"kind": "delete", "id": "a/b", "text": "中文"}]
    assert [r.offset for r in log.read()] == [first.offset, second.offset]
    assert _payloads(log, since=first.end) == [second.payload]
    assert _payloads(WriteLog(tmp_path / "writes"), since=second.end) == []


def test_a_torn_last_record_is_dropped_then_cut_before_the_next_append(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = WriteLog(tmp_path / "writes")
    log.append({"n": 1})
    kept = log.append({"n": 2})
    torn = log.append({"n": 3, "pad": "x" * 100})
    [(_, segment)] = log.segments()
    with segment.open("r+b") as handle:  # a crash in the middle of the third write
        handle.truncate(torn.offset + HEADER.size + 10)
    with caplog.at_level(logging.WARNING):
        assert _payloads(log) == [{"n": 1}, {"n": 2}]
    assert "torn last record" in caplog.text
    after = WriteLog(tmp_path / "writes").append({"n": 4})  # another process, after a restart
    assert after.offset == kept.end
    assert _payloads(log) == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_a_last_record_with_wrong_bytes_counts_as_torn(tmp_path: Path) -> None:
    log = WriteLog(tmp_path / "writes")
    log.append({"n": 1})
    last = log.append({"n": 2})
    [(_, segment)] = log.segments()
    data = bytearray(segment.read_bytes())
    data[last.end - 2] ^= 0xFF  # inside the payload: the checksum no longer holds
    segment.write_bytes(bytes(data))
    assert _payloads(log) == [{"n": 1}]
    WriteLog(tmp_path / "writes").append({"n": 3})  # the next process to append cuts the bad bytes off
    assert _payloads(log) == [{"n": 1}, {"n": 3}]


def test_damage_before_good_records_is_refused_with_its_offset(tmp_path: Path) -> None:
    log = WriteLog(tmp_path / "writes")
    first = log.append({"n": 1, "text": "some words"})
    second = log.append({"n": 2})
    log.append({"n": 3})
    [(_, segment)] = log.segments()
    data = bytearray(segment.read_bytes())
    data[first.end - 3] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(WriteLogError, match=f"damaged at offset {first.offset}"):
        _payloads(log)
    assert _payloads(log, since=second.offset) == [{"n": 2}, {"n": 3}]  # what follows still reads


def test_a_roll_starts_a_segment_at_the_snapshot(tmp_path: Path) -> None:
    log = WriteLog(tmp_path / "writes")
    log.append({"n": 1})
    log.append({"n": 2})
    snapshot = log.roll()
    assert snapshot == log.end() and len(log.segments()) == 2
    assert log.roll() == snapshot and len(log.segments()) == 2  # nothing new: no empty segment added
    log.append({"n": 3})
    assert _payloads(log) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert _payloads(log, since=snapshot) == [{"n": 3}]
    assert log.segments()[1][0] == snapshot


def test_refuses_a_record_that_is_not_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        WriteLog(tmp_path / "writes").append({"x": float("nan")})
    assert WriteLog(tmp_path / "writes").end() == 0


def _append_many(directory: str, writer: int, count: int) -> None:
    log = WriteLog(Path(directory))
    for i in range(count):
        log.append({"writer": writer, "i": i})


def test_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "writes"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append_many, args=(str(directory), w, 50)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
    assert all(process.exitcode == 0 for process in writers)
    records = list(WriteLog(directory).read())
    assert sorted((r.payload["writer"], r.payload["i"]) for r in records) == [
        (w, i) for w in range(3) for i in range(50)
    ]
    for writer in range(3):  # each writer's records in the order it wrote them
        assert [r.payload["i"] for r in records if r.payload["writer"] == writer] == list(range(50))
    assert all(a.end == b.offset for a, b in itertools.pairwise(records))
