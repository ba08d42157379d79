"""Keyword filters and numeric columns: what the online side filters, boosts and ranks on besides text.

Keyword fields (category, tags, every categorical feature) are stored per field as a posting list per value:
``keywords/<field>/values.json`` (the values, sorted), ``offsets.npy`` (int64, len(values) + 1) and
``rows.npy`` (int32; the sorted rows holding value i are ``rows[offsets[i]:offsets[i + 1]]``). A field with
at most one value per row also has ``codes.npy`` (int32 per row: index into values, -1 when missing).
``keywords/fields.json`` lists the fields and whether each is single-valued.

Numeric columns (every numeric feature, lat, lon, popularity) are ``columns/<name>.npy``: float64 per row,
NaN where the item had no value. Everything is memory-mapped on load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

FIELDS_FILE = "fields.json"


def write_keywords(directory: Path, fields: Mapping[str, Sequence[Sequence[str]]], n_rows: int) -> dict:
    """Write every keyword field (`field -> per-row value lists`); return {field: number of values}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    described: dict[str, dict] = {}
    for name, per_row in fields.items():
        if len(per_row) != n_rows:
            raise ValueError(f"keyword field {name!r} has {len(per_row)} rows, expected {n_rows}")
        postings: dict[str, list[int]] = {}
        for row, values in enumerate(per_row):
            for value in dict.fromkeys(values):
                postings.setdefault(value, []).append(row)
        values = sorted(postings)
        lengths = [len(postings[v]) for v in values]
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        rows = np.fromiter((r for v in values for r in postings[v]), dtype=np.int32, count=int(offsets[-1]))
        target = directory / name
        target.mkdir()
        (target / "values.json").write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
        np.save(target / "offsets.npy", offsets)
        np.save(target / "rows.npy", rows)
        single = all(len(set(v)) <= 1 for v in per_row)
        if single:
            codes = np.full(n_rows, -1, dtype=np.int32)
            for code in range(len(values)):
                codes[rows[offsets[code] : offsets[code + 1]]] = code
            np.save(target / "codes.npy", codes)
        described[name] = {"values": len(values), "single_valued": single}
    (directory / FIELDS_FILE).write_text(json.dumps(described, indent=2), encoding="utf-8")
    return {name: d["values"] for name, d in described.items()}


class KeywordField:
    """One keyword field: value -> sorted rows, and per-row codes when single-valued."""

    def __init__(self, name: str, directory: Path, n_rows: int) -> None:
        self.name = name
        self.n_rows = n_rows
        self.values: list[str] = json.loads((directory / "values.json").read_text(encoding="utf-8"))
        self._code_of = {value: code for code, value in enumerate(self.values)}
        self._offsets = np.load(directory / "offsets.npy", mmap_mode="r")
        self._rows = np.load(directory / "rows.npy", mmap_mode="r")
        codes = directory / "codes.npy"
        self.codes: np.ndarray | None = np.load(codes, mmap_mode="r") if codes.is_file() else None

    def rows(self, value: str) -> np.ndarray:
        """Sorted int32 rows holding `value` (empty for an unknown value)."""
        code = self._code_of.get(value)
        if code is None:
            return np.zeros(0, dtype=np.int32)
        return np.asarray(self._rows[self._offsets[code] : self._offsets[code + 1]])

    def postings(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, rows): value i's sorted rows are rows[offsets[i]:offsets[i + 1]]."""
        return np.asarray(self._offsets, dtype=np.int64), np.asarray(self._rows, dtype=np.int64)

    def mask(self, values: Iterable[str]) -> np.ndarray:
        """Boolean mask over rows: True where the row holds any of `values`."""
        if isinstance(values, str):
            values = [values]
        out = np.zeros(self.n_rows, dtype=bool)
        for value in values:
            out[self.rows(value)] = True
        return out

    def counts(self) -> dict[str, int]:
        """Rows per value."""
        return dict(zip(self.values, np.diff(np.asarray(self._offsets)).tolist(), strict=True))


class Keywords:
    """Every keyword field of a collection."""

    def __init__(self, fields: dict[str, KeywordField]) -> None:
        self.fields = fields

    @classmethod
    def load(cls, directory: Path, n_rows: int) -> Keywords:
        directory = Path(directory)
        if not (directory / FIELDS_FILE).is_file():
            return cls({})
        described = json.loads((directory / FIELDS_FILE).read_text(encoding="utf-8"))
        return cls({name: KeywordField(name, directory / name, n_rows) for name in described})

    def field(self, name: str) -> KeywordField:
        if name not in self.fields:
            raise ValueError(f"unknown keyword field {name!r}; this collection has {sorted(self.fields)}")
        return self.fields[name]

    def mask(self, name: str, values: Iterable[str]) -> np.ndarray:
        return self.field(name).mask(values)


def write_columns(directory: Path, columns: Mapping[str, Sequence[float | None]]) -> list[str]:
    """Write each numeric column as float64 .npy (None -> NaN); return the column names."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, values in columns.items():
        array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        np.save(directory / f"{name}.npy", array)
    return sorted(columns)


def load_columns(directory: Path) -> dict[str, np.ndarray]:
    """Memory-mapped float64 columns by name (empty when the directory does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    return {path.stem: np.load(path, mmap_mode="r") for path in sorted(directory.glob("*.npy"))}
