"""The dense branch follows its encoder: English-only MiniLM skips mostly CJK queries, E5 serves them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from retrieval.candidates import SearchQuery
from retrieval.sources import DenseSource


@pytest.mark.parametrize(
    ("multilingual", "text", "runs"),
    [
        (False, "vitamin D and bone fractures", True),
        (False, "黑豹队的防守丢了多少分？", False),
        (False, "Carolina Panthers 黑豹队", True),  # mostly Latin letters
        (True, "黑豹队的防守丢了多少分？", True),
        (True, "ポケモンの作者は誰ですか", True),
        (True, "   ", False),
    ],
)
def test_the_dense_gate_follows_the_encoders_languages(multilingual: bool, text: str, runs: bool) -> None:
    collection = SimpleNamespace(encoder=SimpleNamespace(multilingual=multilingual))
    assert DenseSource(collection).enabled(SearchQuery(text)) is runs  # type: ignore[arg-type]
