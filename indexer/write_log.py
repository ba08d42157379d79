"""The write-ahead log of a collection's real-time writes: behaviour events, item upserts and deletes.

One log per index root, kept in segments under ``ROOT/writes/``: ``<offset>.log`` holds the records from that
global offset on (20 digits, so names sort by offset). A record is an 8-byte header, its payload length and
the CRC-32 of the payload (two little-endian uint32), then the payload, one JSON object in UTF-8. A record's
offset is where its header starts; the log's end is where the next record will start.

Durability. `append` writes one record with a single `write` on a descriptor opened with ``O_APPEND`` while
holding an exclusive `flock` on the segment, then `fsync`s it before returning: a write the service has
acknowledged is on disk (each request costs one fsync, no group commit, so no acknowledged write is at
risk). Several processes (the workers of one `serve`) append to one log safely.

Torn records. A crash during a `write` can leave the last record cut short or its bytes wrong. Reading stops
at such a tail, warns, and `repair` (run under the same lock before an append, and by `read` when asked)
truncates the segment to its last whole record, so a later record never follows garbage. A bad record
followed by good ones is not a torn tail but damage: `WriteLogError` names the segment and the offset.

Versions and rebuilds. A build calls `roll` at its snapshot: the current segment is closed and a new one
starts at the log's end, offset S; the build folds in every record before S and its manifest records S
(`writes_upto`). A service serving that version replays the records from S on, so nothing is counted twice
and nothing written while the build ran is lost. Segments are never deleted: every build folds the log
from its start (`indexer.logged_writes`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WRITES_DIR = "writes"
SUFFIX = ".log"
HEADER = struct.Struct("<II")  # payload length, CRC-32 of the payload
MAX_RECORD_BYTES = 64 * 1024 * 1024


class WriteLogError(RuntimeError):
    """The log is damaged somewhere other than a torn last record."""


@dataclass(frozen=True, slots=True)
class LoggedWrite:
    """One record: where it starts, where the next one starts, and what it says."""

    offset: int
    end: int
    payload: dict[str, Any]


class WriteLog:
    """The segments under `directory` (created on first append)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._checked = (-1, 0)  # (segment start, bytes of it known to be whole records)

    # ------------------------------------------------------------------------------------- segments
    def segments(self) -> list[tuple[int, Path]]:
        """(first offset, path) of every segment, in offset order."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            stem = path.name.removesuffix(SUFFIX)
            if stem.isdigit():
                found.append((int(stem), path))
        return sorted(found)

    def end(self) -> int:
        """The offset the next record will get (0 for an empty log)."""
        segments = self.segments()
        if not segments:
            return 0
        start, path = segments[-1]
        return start + path.stat().st_size

    def _segment_path(self, start: int) -> Path:
        return self.directory / f"{start:020d}{SUFFIX}"

    @contextmanager
    def _locked_tail(self) -> Iterator[tuple[int, int]]:
        """The last segment (created if there is none) opened for appending under an exclusive lock:
        (its first offset, its descriptor)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            segments = self.segments()
            start, path = segments[-1] if segments else (0, self._segment_path(0))
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if self.segments()[-1][0] == start:  # no roll happened while waiting for the lock
                    yield start, fd
                    return
            finally:
                os.close(fd)  # also releases the lock

    # --------------------------------------------------------------------------------------- writing
    def append(self, payload: dict[str, Any]) -> LoggedWrite:
        """Write one record durably (see the module docstring) and return it with its offsets."""
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        if len(data) > MAX_RECORD_BYTES:
            raise ValueError(f"a write of {len(data)} bytes is over the log's {MAX_RECORD_BYTES} per record")
        record = HEADER.pack(len(data), zlib.crc32(data)) + data
        with self._locked_tail() as (start, fd):
            size = self._repair_segment(start, fd)
            os.write(fd, record)
            os.fsync(fd)
            self._checked = (start, size + len(record))
        offset = start + size
        return LoggedWrite(offset, offset + len(record), payload)

    def roll(self) -> int:
        """Start a new segment at the log's end and return that offset (a build's snapshot point)."""
        with self._locked_tail() as (start, fd):
            end = start + self._repair_segment(start, fd)
            if end != start:  # an empty last segment already starts at the end
                path = self._segment_path(end)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
                _fsync_dir(self.directory)
            return end

    def _repair_segment(self, start: int, fd: int) -> int:
        """The segment's size once a torn last record is cut off (the caller holds its lock). Only the
        bytes appended since this object last looked are checked."""
        path = self._segment_path(start)
        checked_start, checked = self._checked
        size = os.fstat(fd).st_size
        good = _whole_records_end(path, checked if checked_start == start and checked <= size else 0)
        if good < size:
            torn = start + good
            log.warning(
                "write log %s: dropped a torn last record (%d bytes at offset %d)", path, size - good, torn
            )
            os.ftruncate(fd, good)
            os.fsync(fd)
        self._checked = (start, good)
        return good

    # --------------------------------------------------------------------------------------- reading
    def read(self, since: int = 0) -> Iterator[LoggedWrite]:
        """Every whole record from offset `since` (a record boundary: 0, or a record's `end`) on, in log
        order. A torn last record ends the reading (with a warning); damage elsewhere raises
        `WriteLogError`."""
        segments = self.segments()
        for i, (start, path) in enumerate(segments):
            following = segments[i + 1][0] if i + 1 < len(segments) else None
            if following is not None and following <= since:
                continue
            yield from _records(path, start, max(since - start, 0), last=following is None)


def _records(path: Path, start: int, position: int, *, last: bool) -> Iterator[LoggedWrite]:
    """The records of the segment at `path` (first offset `start`) from byte `position` on."""
    with path.open("rb") as handle:
        handle.seek(position)
        data = handle.read()
    here = 0
    while here < len(data):
        problem = _problem_at(data, here)
        if problem is not None:
            where = start + position + here
            if last and _only_torn_tail(data, here):
                log.warning(
                    "write log %s: a torn last record at offset %d was not read (%s)", path, where, problem
                )
                return
            raise WriteLogError(f"write log {path} is damaged at offset {where}: {problem}")
        length, _ = HEADER.unpack_from(data, here)
        end = here + HEADER.size + length
        payload = json.loads(data[here + HEADER.size : end])
        yield LoggedWrite(start + position + here, start + position + end, payload)
        here = end


def _problem_at(data: bytes, position: int) -> str | None:
    """Why the record at `position` cannot be read, or None when it is whole and its checksum holds."""
    if len(data) - position < HEADER.size:
        return "the header is cut short"
    length, checksum = HEADER.unpack_from(data, position)
    if length > MAX_RECORD_BYTES:
        return f"a length of {length} bytes"
    body = data[position + HEADER.size : position + HEADER.size + length]
    if len(body) < length:
        return "the payload is cut short"
    if zlib.crc32(body) != checksum:
        return "the checksum does not match"
    return None


def _only_torn_tail(data: bytes, position: int) -> bool:
    """Whether the bad bytes from `position` can be one record cut short by a crash: no whole, valid
    record starts after it."""
    return not any(
        _problem_at(data, later) is None for later in range(position + 1, len(data) - HEADER.size + 1)
    )


def _whole_records_end(path: Path, position: int) -> int:
    """Where the whole, valid records of the segment at `path` end, reading from byte `position` (a record
    boundary)."""
    with path.open("rb") as handle:
        handle.seek(position)
        data = handle.read()
    here = 0
    while here < len(data) and _problem_at(data, here) is None:
        length, _ = HEADER.unpack_from(data, here)
        here += HEADER.size + length
    return position + here


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
