"""Exact top-k candidate selection with MaxScore over impact-tiered posting segments, in numpy.

A segment is a slice of one term's postings (docs ascending) with an upper bound on its impacts; a term's
segments have decreasing bounds and every doc of a term sits in exactly one of its segments.

Phase 1 walks segments by decreasing bound, accumulating partial scores, collecting every doc it touches
and which query terms each doc matched, until the k-th best partial score exceeds the most an untouched
doc could reach. Phase 2 completes the candidates' partial scores from the remaining segments, looking up
only candidates that have not matched the segment's term yet (binary search for few docs, a scan for
many) and dropping candidates whose own upper bound (partial score plus the bounds of the terms they have
not matched) falls below the k-th best partial score. The caller rescores the survivors exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Relative slack for float32 rounding when comparing partial sums against bounds.
SLACK = 1e-4
# Phase 2 binary-searches a segment when it is this many times longer than the docs to look up.
_SEARCH_RATIO = 16
# Once phase 1 has touched this share of all docs, tracking candidates costs more than dense scoring.
DENSE_SWITCH = 1 / 16
# Query terms beyond this many get no match bit (their bounds are then applied to every candidate).
_MAX_BITS = 31


class Segment(NamedTuple):
    slot: int  # index of the query term (0 = first distinct term), used for match bits
    start: int
    end: int
    bound: float  # query weight times the largest impact in the segment
    weight: int


def _bit(slot: int) -> int:
    return 1 << slot if slot < _MAX_BITS else 0


def _kth(vals: np.ndarray, k: int) -> float:
    return float(np.partition(vals, len(vals) - k)[len(vals) - k]) if len(vals) >= k else 0.0


def _next_bounds(segs: list[Segment], n_terms: int) -> list[list[float]]:
    """nb[i][j]: bound of term j's first segment at or after position i (0 if none); nb has len + 1 rows."""
    nb = [[0.0] * n_terms]
    for seg in reversed(segs):
        row = list(nb[-1])
        row[seg.slot] = seg.bound
        nb.append(row)
    return nb[::-1]


def _collect(
    segs: list[Segment],
    nb: list[list[float]],
    arrays: tuple[np.ndarray, np.ndarray],
    k: int,
    mask: np.ndarray | None,
    buffers: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Phase 1: candidate docs, their partial scores and match bits, and the number of segments used."""
    doc_ids, impacts = arrays
    acc, bits = buffers
    sizes = [seg.end - seg.start for seg in segs]
    work = [sum(sizes[i + 1 :]) for i in range(len(segs))]  # postings left after segment i
    dense_after = max(k, int(len(acc) * DENSE_SWITCH))
    parts: list[np.ndarray] = []
    n_cand = 0
    try:
        for i, seg in enumerate(segs):
            if n_cand > dense_after:
                return (*_finish_dense(segs[i:], arrays, k, mask, buffers), len(segs))
            ids = doc_ids[seg.start : seg.end].astype(np.intp)  # intp indexing is ~3x faster than int32
            cur = acc.take(ids)
            new = ids[cur == 0]
            parts.append(new)
            n_cand += len(new)
            imp = impacts[seg.start : seg.end]
            cur += imp if seg.weight == 1 else imp * np.float32(seg.weight)
            acc[ids] = cur
            if _bit(seg.slot):
                bits[ids] |= _bit(seg.slot)
            rest = sum(nb[i + 1])
            if rest == 0.0 or n_cand < k or work[i] < n_cand:
                continue
            cands = np.concatenate(parts)
            parts = [cands]
            vals = acc[cands] if mask is None else acc[cands[mask[cands]]]
            if _kth(vals, k) > rest * (1 + SLACK):
                return (*_gather_candidates(parts, acc, bits, mask), i + 1)
        return (*_gather_candidates(parts, acc, bits, mask), len(segs))
    finally:
        if n_cand > dense_after:
            acc.fill(0)
            bits.fill(0)
        else:
            for part in parts:
                acc[part] = 0
                bits[part] = 0


def _gather_candidates(
    parts: list[np.ndarray], acc: np.ndarray, bits: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if mask is not None:
        rows = rows[mask[rows]]
    return rows, acc[rows], bits[rows]


def _finish_dense(
    segs: list[Segment],
    arrays: tuple[np.ndarray, np.ndarray],
    k: int,
    mask: np.ndarray | None,
    buffers: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Too many candidates to track: add the remaining segments densely and rank the whole accumulator."""
    doc_ids, impacts = arrays
    acc, bits = buffers
    for seg in segs:
        imp = impacts[seg.start : seg.end]
        ids = doc_ids[seg.start : seg.end].astype(np.intp)
        np.add.at(acc, ids, imp if seg.weight == 1 else imp * np.float32(seg.weight))
    vals = acc if mask is None else np.where(mask, acc, np.float32(0))
    threshold = max(_kth(vals, k) * (1 - SLACK), float(np.finfo(np.float32).tiny))
    rows = np.flatnonzero(vals >= np.float32(threshold))
    return rows, vals[rows], bits[rows]


def _upper_bounds(partial: np.ndarray, matched: np.ndarray, nb: list[float]) -> np.ndarray:
    """Per-candidate upper bound: partial score plus the next bound of every term not matched yet."""
    ub = partial + np.float32(sum(nb))
    for slot, bound in enumerate(nb):
        if bound and _bit(slot):
            ub -= np.float32(bound) * ((matched & _bit(slot)) != 0)
    return ub


def _complete(
    cands: tuple[np.ndarray, np.ndarray, np.ndarray],
    segs: list[Segment],
    nb: list[list[float]],
    arrays: tuple[np.ndarray, np.ndarray],
    k: int,
    slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Phase 2: add the remaining segments to the candidates' partial scores, pruning as bounds tighten."""
    doc_ids, impacts = arrays
    rows, partial, matched = cands
    is_sorted = False
    for i, seg in enumerate(segs):
        keep = _upper_bounds(partial, matched, nb[i]) >= np.float32(_kth(partial, k) * (1 - SLACK))
        if not keep.all():
            rows, partial, matched = rows[keep], partial[keep], matched[keep]
        bit = _bit(seg.slot)
        need = np.flatnonzero((matched & bit) == 0) if bit else np.arange(len(rows))
        if not len(need):
            continue
        ids = doc_ids[seg.start : seg.end]
        imp = impacts[seg.start : seg.end]
        if len(need) * _SEARCH_RATIO < len(ids):
            if not is_sorted:
                order = np.argsort(rows)
                rows, partial, matched, is_sorted = rows[order], partial[order], matched[order], True
                need = np.flatnonzero((matched & bit) == 0) if bit else np.arange(len(rows))
            look = rows[need]
            pos = np.searchsorted(ids, look)
            np.minimum(pos, len(ids) - 1, out=pos)
            hit = np.flatnonzero(ids[pos] == look)
            at, gain = need[hit], imp[pos[hit]]
        else:
            slots[rows[need]] = need + 1
            try:
                found = slots.take(ids)
            finally:
                slots[rows[need]] = 0
            hit = np.flatnonzero(found)
            at, gain = found[hit] - 1, imp[hit]
        partial[at] += gain if seg.weight == 1 else gain * np.float32(seg.weight)
        matched[at] |= bit
    return rows, partial


def candidates(
    segs: list[Segment],
    arrays: tuple[np.ndarray, np.ndarray],
    k: int,
    mask: np.ndarray | None,
    buffers: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Rows that can be in the exact top k (a small superset of it).

    ``segs`` must be sorted by decreasing bound. ``buffers`` are a float32 and an int32 array of length
    n_docs, all zeros on entry and again on return.
    """
    n_terms = max(seg.slot for seg in segs) + 1
    nb = _next_bounds(segs, n_terms)
    rows, partial, matched, used = _collect(segs, nb, arrays, k, mask, buffers)
    if used < len(segs):
        rows, partial = _complete((rows, partial, matched), segs[used:], nb[used:], arrays, k, buffers[1])
    if len(rows) > k:
        rows = rows[partial >= np.float32(_kth(partial, k) * (1 - SLACK))]
    return rows
