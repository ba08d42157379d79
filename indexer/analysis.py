"""Text analyzers: turn a string into the list of index terms used by the BM25 index.

Four analyzers are registered in ``ANALYZERS``:

- ``english``: lowercase, split on ``(?u)\\b\\w\\w+\\b`` (the bm25s default token pattern), drop the Lucene
  English stopwords (the list bm25s uses for ``stopwords="en"``) and apply Snowball English stemming.
- ``chinese``: jieba search-mode segmentation; punctuation and whitespace are dropped and Latin-script
  tokens go through the english pipeline.
- ``cjk_bigram``: runs of CJK characters become overlapping character bigrams (a run of one character
  stays a unigram); everything else goes through the english pipeline.
- ``cjk_unigram``: every CJK character is a term of its own (robust to segmentation errors); everything
  else goes through the english pipeline.

Analyzers are cheap to construct, picklable (the stemmer and jieba are created lazily) and not meant to
be shared between threads (PyStemmer keeps an internal cache).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from typing import Any, Protocol

import Stemmer

__all__ = [
    "ANALYZERS",
    "ENGLISH_STOPWORDS",
    "Analyzer",
    "ChineseAnalyzer",
    "CjkBigramAnalyzer",
    "CjkUnigramAnalyzer",
    "EnglishAnalyzer",
    "make_analyzer",
]

# Lucene's EnglishAnalyzer stop set; identical to bm25s.stopwords.STOPWORDS_EN.
# fmt: off
ENGLISH_STOPWORDS: frozenset[str] = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
    "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this",
    "to", "was", "will", "with",
])
# fmt: on

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")

# Han (incl. extension A and compatibility ideographs), Hiragana, Katakana, Hangul syllables.
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_RUN = re.compile(f"([{_CJK_RANGES}]+)")
_HAS_CJK = re.compile(f"[{_CJK_RANGES}]")


class Analyzer(Protocol):
    """A callable that maps a text to its index terms."""

    name: str

    def __call__(self, text: str) -> list[str]: ...


class EnglishAnalyzer:
    """Lowercase, regex split, Lucene stopwords, Snowball English stemming."""

    name = "english"

    def __init__(self) -> None:
        self._stemmer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._stemmer = None

    def _stem(self, words: list[str]) -> list[str]:
        if self._stemmer is None:
            self._stemmer = Stemmer.Stemmer("english")
        return self._stemmer.stemWords(words) if words else []

    def terms(self, text: str) -> list[str]:
        """Lowercased, split, stopword-free words of ``text``, not yet stemmed."""
        return [w for w in TOKEN_PATTERN.findall(text.lower()) if w not in ENGLISH_STOPWORDS]

    def __call__(self, text: str) -> list[str]:
        return self._stem(self.terms(text))


class _MixedScriptAnalyzer:
    """Shared part of the CJK analyzers: non-CJK text goes through the english pipeline."""

    name = ""

    def __init__(self) -> None:
        self._english = EnglishAnalyzer()

    def _segments(self, text: str) -> list[tuple[bool, str]]:
        raise NotImplementedError

    def __call__(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text)
        out: list[str] = []
        latin_at: list[int] = []
        latin: list[str] = []
        for is_cjk, piece in self._segments(text):
            if is_cjk:
                out.append(piece)
                continue
            for word in self._english.terms(piece):
                latin_at.append(len(out))
                latin.append(word)
                out.append(word)
        for pos, stem in zip(latin_at, self._english._stem(latin), strict=True):
            out[pos] = stem
        return out


class CjkBigramAnalyzer(_MixedScriptAnalyzer):
    """Overlapping character bigrams for CJK runs, english pipeline for the rest."""

    name = "cjk_bigram"

    def _segments(self, text: str) -> list[tuple[bool, str]]:
        segments: list[tuple[bool, str]] = []
        for i, part in enumerate(_CJK_RUN.split(text)):
            if not part:
                continue
            if i % 2 == 0:
                segments.append((False, part))
            elif len(part) == 1:
                segments.append((True, part))
            else:
                segments.extend((True, part[j : j + 2]) for j in range(len(part) - 1))
        return segments


class CjkUnigramAnalyzer(CjkBigramAnalyzer):
    """Single CJK characters (robust to segmentation errors), english pipeline for everything else."""

    name = "cjk_unigram"

    def _segments(self, text: str) -> list[tuple[bool, str]]:
        segments: list[tuple[bool, str]] = []
        for i, part in enumerate(_CJK_RUN.split(text)):
            if part:
                segments.extend([(False, part)] if i % 2 == 0 else [(True, ch) for ch in part])
        return segments


_JIEBA_LOCK = threading.Lock()
_JIEBA: Any = None


def _jieba_tokenizer() -> Any:
    """The shared jieba tokenizer, initialised once, with its start-up log messages silenced."""
    global _JIEBA
    if _JIEBA is None:
        with _JIEBA_LOCK:
            if _JIEBA is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.dt.initialize()
                _JIEBA = jieba.dt
    return _JIEBA


class ChineseAnalyzer(_MixedScriptAnalyzer):
    """jieba search-mode words for Chinese, english pipeline for Latin-script tokens."""

    name = "chinese"

    def _segments(self, text: str) -> list[tuple[bool, str]]:
        segments: list[tuple[bool, str]] = []
        for token in _jieba_tokenizer().cut_for_search(text):
            token = token.strip()
            if not token or not any(ch.isalnum() for ch in token):
                continue
            segments.append((_HAS_CJK.search(token) is not None, token.lower()))
        return segments


ANALYZERS: dict[str, type] = {
    "english": EnglishAnalyzer,
    "chinese": ChineseAnalyzer,
    "cjk_bigram": CjkBigramAnalyzer,
    "cjk_unigram": CjkUnigramAnalyzer,
}


def make_analyzer(name: str) -> Analyzer:
    """A new analyzer registered under ``name`` in ``ANALYZERS``."""
    try:
        cls = ANALYZERS[name]
    except KeyError:
        raise ValueError(f"unknown analyzer {name!r}; choose one of {sorted(ANALYZERS)}") from None
    analyzer: Analyzer = cls()
    return analyzer
