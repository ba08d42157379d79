"""Exact names: whether a query text is an item's name, or one of its names, as written.

A place, shop or product is usually looked up by its name. When the text of a request equals an item's
name, that item should lead items that only share a word with it ("Springfield" is Springfield, not West
Springfield), so the geo branch gives exact names a head start over partial matches at comparable distance.

An item's names are its title and, from every text field, the whole value and the parts between list
separators (`,` `;` `|` `/`, tabs, new lines); a run of CJK names separated by spaces is split on the
spaces too (CJK names hold no spaces). Names and queries are compared after NFKC normalisation, case folding
and collapsing white space.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from indexer.config import RESERVED_RECORD_KEYS

_SEPARATORS = re.compile(r"[,;|/\t\n\r，、；]+")
_SPACES = re.compile(r"\s+")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def normalize_name(text: str) -> str:
    """The form names are compared in: NFKC, case-folded, single spaces, no outer space."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def names_of(record: dict[str, Any]) -> set[str]:
    """The normalised names of a docstore record (its text fields; not category, tags or numbers)."""
    names: set[str] = set()
    for key, value in record.items():
        if key in RESERVED_RECORD_KEYS or not isinstance(value, str):
            continue
        names.update(_names_in(value))
    names.discard("")
    return names


def _names_in(value: str) -> Iterable[str]:
    yield normalize_name(value)
    for part in _SEPARATORS.split(value):
        yield normalize_name(part)
        if _CJK.search(part):
            yield from (normalize_name(word) for word in part.split())
