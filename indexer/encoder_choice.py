"""The build's ``encoder = "auto"``: a multilingual encoder for a corpus mostly written in other scripts.

all-MiniLM-L6-v2 (``torch``) was trained on English: on XQuAD-R zh its nDCG@10 is 0.30, against 0.854 for
multilingual-e5-small (``e5-multilingual``). On English it is good (SciFact nDCG@10 0.645) and far faster
on long texts (E5 embeds about 0.84 abstracts per second on one thread). So `auto` picks
``e5-multilingual`` when Latin letters make up less than half of the letters of the items' text (Han,
kana, hangul, Cyrillic, Arabic, ...), and ``torch`` otherwise; when E5 cannot run on the machine (no AVX2,
not x86-64), it falls back to ``torch`` and says why. An explicit kind in the configuration always wins.

Items that carry their own vectors (the `vector` role, `indexer.item_vectors`) need no encoder: `supplied`
says so, for ``auto`` or ``supplied``; an explicit encoder kind beside a vector column is refused, since
the build cannot honour both.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.encoders import E5_MULTILINGUAL, MODEL_NAME, TORCH, check_encoder_kind
from indexer.encoders.e5_multilingual import unavailable_reason
from indexer.schemas import AUTO, SUPPLIED

__all__ = ["AUTO", "LATIN_AT_LEAST", "EncoderChoice", "choose_encoder", "supplied"]

LATIN_AT_LEAST = 0.5  # Latin share of letters from which `auto` keeps the English model


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder kind a build uses, and why (the build log and the manifest say both)."""

    kind: str
    reason: str
    setting: str = AUTO

    def describe(self) -> str:
        """One line for the build log, e.g. ``encoder auto: e5-multilingual (latin 3% of letters; ...)``."""
        if self.kind == SUPPLIED:
            return f"encoder: {self.reason}"
        label = "encoder auto" if self.setting == AUTO else "encoder"
        return f"{label}: {self.kind} ({self.reason})"


def supplied(setting: str, dim: int, column: str) -> EncoderChoice:
    """The choice for items carrying `dim`-dimensional vectors in `column`, under the `setting` (``auto``
    or ``supplied``; ValueError for an encoder kind, which the vectors contradict)."""
    if setting not in (AUTO, SUPPLIED):
        raise ValueError(
            f"the items carry their own vectors (column {column!r}), but the configuration sets encoder "
            f"{setting!r}; set encoder to {AUTO!r} or {SUPPLIED!r} to index the vectors, or map no vector "
            "column (--map vector=) to encode the text"
        )
    return EncoderChoice(SUPPLIED, f"supplied vectors (dim {dim}) from column {column}", setting)


def choose_encoder(setting: str, shares: dict[str, float]) -> EncoderChoice:
    """The kind for `setting` (``auto`` or a kind) given the script shares of the items' letters
    (`indexer.analysis.script_shares`)."""
    if setting == SUPPLIED:
        raise ValueError(
            f"encoder {SUPPLIED!r} indexes the items' own vectors, but no vector column is mapped; name it "
            "with --map vector=COLUMN (or [items] vector in a config)"
        )
    if setting != AUTO:
        return EncoderChoice(check_encoder_kind(setting), "set in the build configuration", setting)
    if not shares:
        return EncoderChoice(TORCH, "the items' text has no letters")
    latin = shares.get("latin", 0.0)
    if latin >= LATIN_AT_LEAST:
        return EncoderChoice(TORCH, f"latin {latin:.0%} of letters; {MODEL_NAME} reads English")
    problem = unavailable_reason()
    if problem is not None:
        return EncoderChoice(
            TORCH,
            f"latin {latin:.0%} of letters, but {E5_MULTILINGUAL} cannot run: {problem}; the dense branch "
            "will skip mostly CJK queries",
        )
    return EncoderChoice(E5_MULTILINGUAL, f"latin {latin:.0%} of letters; {MODEL_NAME} is English-only")
