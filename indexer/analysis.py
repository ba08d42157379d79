"""Text analyzers: turn a string into the list of index terms used by the BM25 index.

Five analyzers are registered in ``ANALYZERS``:

- ``auto`` (the default): chooses per run of script, so one collection can hold English, Chinese,
  Japanese and Korean text and a query is analysed by the same rule. Han runs (Chinese) get jieba
  search-mode words plus every single character (the usual practice for Chinese search: words for precise
  matches, characters for recall when segmentation differs between query and document); Han next to kana
  (Japanese), kana and hangul get overlapping character bigrams; everything else the ``english`` pipeline.
  Text without CJK characters gets exactly the ``english`` analyzer's terms.
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
from collections.abc import Iterable
from typing import Any, Protocol

import Stemmer

__all__ = [
    "ANALYZERS",
    "ENGLISH_STOPWORDS",
    "SCRIPTS",
    "Analyzer",
    "AutoAnalyzer",
    "ChineseAnalyzer",
    "CjkBigramAnalyzer",
    "CjkUnigramAnalyzer",
    "EnglishAnalyzer",
    "describe_auto",
    "make_analyzer",
    "script_counts",
    "script_shares",
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
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff"
_HANGUL = "\uac00-\ud7af"
_HAN_RUN = re.compile(f"([{_HAN}]+)")
_HAS_KANA = re.compile(f"[{_KANA}]")
SCRIPTS = ("latin", "han", "kana", "hangul", "other")


_LETTER = re.compile(r"[^\W\d_]")
_SCRIPT_LETTERS = {
    "latin": re.compile("[A-Za-z\u00c0-\u024f]"),
    "han": re.compile(f"[{_HAN}]"),
    "kana": _HAS_KANA,
    "hangul": re.compile(f"[{_HANGUL}]"),
}


def script_counts(text: str) -> dict[str, int]:
    """How many letters of `text` are Latin, Han, kana, hangul or of another script (digits excluded)."""
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPT_LETTERS.items()}
    counts["other"] = max(0, len(_LETTER.findall(text)) - sum(counts.values()))
    return counts


def script_shares(texts: Iterable[str]) -> dict[str, float]:
    """Each script's share of the letters of `texts` (rounded to 4 places; scripts with no letters left
    out)."""
    total = dict.fromkeys(SCRIPTS, 0)
    for text in texts:
        for name, count in script_counts(text).items():
            total[name] += count
    letters = sum(total.values())
    return {name: round(count / letters, 4) for name, count in total.items() if count} if letters else {}


# What `auto` does with each script, for the build log.
AUTO_RULES = {
    "latin": "English stemming",
    "han": "jieba words + single characters (Chinese) or bigrams (next to kana)",
    "kana": "character bigrams",
    "hangul": "character bigrams",
    "other": "English pipeline (lowercase words)",
}


def describe_auto(shares: dict[str, float]) -> str:
    """One line for the build log: the scripts `auto` met and what it does with each."""
    if not shares:
        return "no letters"
    parts = sorted(shares.items(), key=lambda kv: -kv[1])
    return "; ".join(f"{name} {share:.1%} -> {AUTO_RULES[name]}" for name, share in parts)


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


class AutoAnalyzer(_MixedScriptAnalyzer):
    """Per script run: jieba words plus single characters for Han, bigrams for Japanese (Han with kana),
    kana and hangul, english for the rest; text without CJK is analysed exactly as `english` does."""

    name = "auto"

    def __call__(self, text: str) -> list[str]:
        if _HAS_CJK.search(text) is None:
            return self._english(text)
        return super().__call__(text)

    def _segments(self, text: str) -> list[tuple[bool, str]]:
        if _HAS_KANA.search(text) is not None:  # Japanese: kanji runs read with the kana, as bigrams
            return CjkBigramAnalyzer._segments(self, text)  # type: ignore[arg-type]
        segments: list[tuple[bool, str]] = []
        for i, part in enumerate(_HAN_RUN.split(text)):
            if i % 2:
                segments.extend(_han_terms(part))
            elif part:  # hangul bigrams, everything else english
                segments.extend(CjkBigramAnalyzer._segments(self, part))  # type: ignore[arg-type]
        return segments


def _han_terms(run: str) -> list[tuple[bool, str]]:
    """A run of Han characters as jieba search-mode words followed by its single characters."""
    words = [w for w in _jieba_tokenizer().cut_for_search(run) if w.strip()]
    return [(True, w) for w in words] + [(True, ch) for ch in run]


ANALYZERS: dict[str, type] = {
    "auto": AutoAnalyzer,
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
