"""Request values echoed in error responses, made safe to send: finite, valid UTF-8 and bounded.

An error names what was sent (pydantic's ``input``, a refused id in a message), but what was sent may be
anything a JSON parser accepts: Python's reads ``NaN``, ``Infinity`` and ``1e400`` as floats and
``"\\ud800"`` as a lone surrogate, and neither can be written back as JSON text. `echo` turns such values
into text (``"NaN"``, ``"\\ud800"`` spelled out), and cuts long strings, long lists and deep nesting, so a
refusal of a one-megabyte body does not send the megabyte back.
"""

from __future__ import annotations

import math
from typing import Any

ECHO_CHARS = 100  # a longer string is cut to this many characters and "…"
ECHO_ITEMS = 20  # a longer list or object keeps its first items and "…"
ECHO_DEPTH = 6  # deeper nesting is replaced by "…"
BIG_INT_BITS = 256  # a larger int is echoed as its digits, cut like any string
CUT = "…"


def echo(value: Any, depth: int = 0) -> Any:
    """`value` as JSON can carry it back: non-finite floats as the JSON words for them, strings with their
    invalid code points escaped and cut to `ECHO_CHARS`, containers cut to `ECHO_ITEMS` items and
    `ECHO_DEPTH` levels; bools, None and ints up to `BIG_INT_BITS` as they are; anything else (an exception
    in pydantic's ``ctx``, a huge int) as its text, cut."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value.bit_length() <= BIG_INT_BITS:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, bytes):
        return text(value.decode("utf-8", "backslashreplace"))
    if isinstance(value, dict | list | tuple):
        return _container(value, depth) if depth < ECHO_DEPTH else CUT
    return text(str(value))


def _container(value: dict | list | tuple, depth: int) -> dict | list:
    if isinstance(value, dict):
        items = list(value.items())
        kept = {text(str(key)): echo(item, depth + 1) for key, item in items[:ECHO_ITEMS]}
        return {**kept, CUT: CUT} if len(items) > ECHO_ITEMS else kept
    listed = [echo(item, depth + 1) for item in value[:ECHO_ITEMS]]
    return [*listed, CUT] if len(value) > ECHO_ITEMS else listed


def text(value: str, limit: int = ECHO_CHARS) -> str:
    """`value` cut to `limit` characters, with code points UTF-8 cannot carry (lone surrogates) written as
    ``\\udXXX`` escapes."""
    cut = value[:limit] + CUT if len(value) > limit else value
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
