"""Compiled (numba) exact BM25 top-k over a term-major impact index, one call per query or per batch.

Every path returns the exact top k with scores bit-identical to bm25s: a document's score is the float32 sum
of its impacts in query-token order (a token repeated in the query adds its impact again, in its place).

- ``_touched``: add every posting into the accumulator in query-token order, heap the touched rows (few
  postings in a large collection).
- ``_dense``: the same additions, then one pass over the whole accumulator, block by block, skipping blocks
  whose maximum cannot enter the heap (many postings for the collection's size).
- ``_pruned`` (large collections): a long posting list is stored as impact tiers (see
  ``indexer.inverted.build``: decreasing impact bound, docs ascending inside each tier), a short one as a
  single tier. Phase 1 adds whole tiers, highest bound first, recording in a bit set which terms each doc
  matched, until the k-th best partial score exceeds the most an untouched doc could still reach (the sum
  over terms of their next tier's bound): the remaining tiers, often nearly all postings, are never walked
  in full. Phase 2 completes the docs whose upper bound (partial score plus the next bounds of the terms
  they have not matched) reaches that threshold, tier by tier, in doc order (galloping search, or a scan
  for a short tier), dropping those whose bound falls below the rising threshold. The survivors are
  rescored exactly in token order. When phase 1 touches too many docs, or completing the candidates would
  cost more than adding every posting, it gives up and the query runs ``_dense``.

Bounds are float64 and every comparison with a threshold allows for float32 rounding. The heap orders
(score, row) with "worse" = lower score, then higher row, so ties go to the lower row.

``index`` is the tuple (indptr, term_segments, segment_bounds, segment_max, doc_ids, impacts), doc_ids viewed
as uint32: unsigned positions and doc ids spare numba's negative-index handling in the hot loops (a third
of the time of adding postings). ``scratch`` is
the per-thread tuple (acc float32[n], acc_bits = acc viewed as int32, touched int32[n + 1], bits uint32[n],
slots int32[n], block_max int32[n // 64 + 1], paths int64[4]), zeros between queries except ``paths``,
which counts the queries each path answered. All kernels live in
this one module because numba's on-disk cache is keyed on the source of the module holding the compiled
function: a caller would keep running a stale copy of a callee changed in another module.
"""

from __future__ import annotations

import numpy as np

from indexer.inverted.jit import njit

Score = float | np.floating | np.integer  # heap values: float32 scores, or integers for selections
Row = int | np.integer
_ONE = np.uint32(1)
# Match bits: one per distinct query term, for the first _BITS terms; later terms are treated as unmatched.
_BITS = 32
# Slots of the per-thread path counters (scratch[6]): queries answered by each path, and pruning give-ups.
_TOUCHED, _DENSE, _PRUNED, _GAVE_UP = 0, 1, 2, 3
# Dense ranking reads only the blocks of this many rows whose largest score can enter the top k, and in
# them only the chunks of _CHUNK rows that can (sizes measured on SciFact: 64-row blocks cost 50% more).
_BLOCK = 128
_CHUNK = 16


@njit
def _worse(s1: Score, r1: Row, s2: Score, r2: Row) -> bool | np.bool_:
    return s1 < s2 or (s1 == s2 and r1 > r2)


@njit
def _sift_down(hs: np.ndarray, hr: np.ndarray, n: int, i: int) -> None:
    s, r = hs[i], hr[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _worse(hs[c + 1], hr[c + 1], hs[c], hr[c]):
            c += 1
        if not _worse(hs[c], hr[c], s, r):
            break
        hs[i], hr[i] = hs[c], hr[c]
        i = c
    hs[i], hr[i] = s, r


@njit
def _offer(hs: np.ndarray, hr: np.ndarray, n: int, k: int, s: Score, r: Row) -> int:
    """Add (s, r) to the heap of the k best (root = worst kept); returns the new heap size."""
    if n < k:
        i = n
        while i > 0:
            parent = (i - 1) >> 1
            if not _worse(s, r, hs[parent], hr[parent]):
                break
            hs[i], hr[i] = hs[parent], hr[parent]
            i = parent
        hs[i], hr[i] = s, r
        return n + 1
    if _worse(hs[0], hr[0], s, r):
        hs[0], hr[0] = s, r
        _sift_down(hs, hr, n, 0)
    return n


@njit
def _sort_heap(hs: np.ndarray, hr: np.ndarray, n: int) -> None:
    """Sort the heap ``hs[:n]``/``hr[:n]`` in place, best first (heapsort: the worst goes last)."""
    for j in range(n - 1, 0, -1):
        s, r = hs[0], hr[0]
        hs[0], hr[0] = hs[j], hr[j]
        _sift_down(hs, hr, j, 0)
        hs[j], hr[j] = s, r


@njit
def _touched(
    tids: np.ndarray, k: int, mask: np.ndarray, index: tuple, scratch: tuple, hs: np.ndarray, hr: np.ndarray
) -> int:
    """Accumulate every posting in query-token order, heap the touched rows."""
    indptr, doc_ids, impacts = index[0], index[4], index[5]
    acc, touched = scratch[0], scratch[2]
    n_touched = 0
    for t in tids:
        for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
            d = doc_ids[p]
            touched[n_touched] = d
            n_touched += acc[d] == 0  # branch-free: the test is a coin flip
            acc[d] += impacts[p]
    n = 0
    for i in range(n_touched):
        d = touched[i]
        s = acc[d]
        acc[d] = 0
        if len(mask) and not mask[d]:
            continue
        if n < k or _worse(hs[0], hr[0], s, d):
            n = _offer(hs, hr, n, k, s, d)
    return n


@njit
def _block_maxima(acc_bits: np.ndarray, mask: np.ndarray, block_max: np.ndarray) -> int:
    """Largest allowed score of each block of ``_BLOCK`` rows, as int32 bit patterns (scores are >= 0, so
    the patterns order like the floats, and an integer maximum over a fixed-length block vectorises);
    returns the number of blocks."""
    n_docs = len(acc_bits)
    n_full = n_docs // _BLOCK
    if len(mask) == 0:
        for blk in range(n_full):
            lo, top = np.uint64(blk * _BLOCK), np.int32(0)
            for d in range(lo, lo + np.uint64(_BLOCK)):
                x = acc_bits[d]
                top = x if x > top else top
            block_max[blk] = top
    else:
        for blk in range(n_full):
            lo, top = np.uint64(blk * _BLOCK), np.int32(0)
            for d in range(lo, lo + np.uint64(_BLOCK)):
                x = acc_bits[d] if mask[d] else np.int32(0)
                top = x if x > top else top
            block_max[blk] = top
    if n_full * _BLOCK == n_docs:
        return n_full
    top = np.int32(0)
    for d in range(n_full * _BLOCK, n_docs):
        x = acc_bits[d] if len(mask) == 0 or mask[d] else np.int32(0)
        top = x if x > top else top
    block_max[n_full] = top
    return n_full + 1


@njit
def _dense(
    tids: np.ndarray, k: int, mask: np.ndarray, index: tuple, scratch: tuple, hs: np.ndarray, hr: np.ndarray
) -> int:
    """Accumulate every posting in query-token order, then rank the whole accumulator by blocks: the k-th
    largest block maximum is a lower bound of the k-th best score, so only blocks reaching it are read."""
    indptr, doc_ids, impacts = index[0], index[4], index[5]
    acc, acc_bits, block_max = scratch[0], scratch[1], scratch[5]
    for t in tids:
        for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
            acc[doc_ids[p]] += impacts[p]
    n_docs = len(acc)
    n_blocks = _block_maxima(acc_bits, mask, block_max)
    # The k-th largest block maximum is a lower bound of the k-th best score (bit patterns; 1 = any > 0).
    limit = max(np.int32(_kth_value(block_max, n_blocks, k, hr)), np.int32(1))
    n = 0
    for blk in range(n_blocks):
        if block_max[blk] < limit:
            continue
        start, stop = np.uint64(blk * _BLOCK), np.uint64(min(blk * _BLOCK + _BLOCK, n_docs))
        for lo in range(start, stop, np.uint64(_CHUNK)):
            hi = min(lo + np.uint64(_CHUNK), stop)
            top = np.int32(0)
            if hi - lo == _CHUNK:  # a fixed trip count vectorises (helpers here are not inlined)
                for d in range(lo, lo + np.uint64(_CHUNK)):
                    x = acc_bits[d]
                    top = x if x > top else top
            else:
                for d in range(lo, hi):
                    x = acc_bits[d]
                    top = x if x > top else top
            if top < limit:
                continue
            for d in range(lo, hi):
                s = acc[d]
                if acc_bits[d] >= limit and (n < k or s > hs[0]) and (len(mask) == 0 or mask[d]):
                    n = _offer(hs, hr, n, k, s, np.int64(d))  # rows ascend: ties never displace
    acc[:] = 0
    return n


@njit
def _gallop(doc_ids: np.ndarray, lo: int, end: int, d: int) -> int:
    """First position in ``lo:end`` (docs ascending) whose doc is >= ``d``; ``end`` if none."""
    if lo >= end or doc_ids[lo] >= d:
        return lo
    step, hi = 1, lo + 1
    while hi < end and doc_ids[hi] < d:
        lo = hi
        step <<= 1
        hi = lo + step
    hi = min(hi, end)
    while hi - lo > 1:  # doc_ids[lo] < d <= doc_ids[hi] (or hi == end)
        mid = (lo + hi) >> 1
        if doc_ids[mid] < d:
            lo = mid
        else:
            hi = mid
    return hi


@njit
def _kth_value(values: np.ndarray, n: int, k: int, heap: np.ndarray) -> float:
    """k-th largest of ``values[:n]`` (0.0 if n < k), with a plain min-heap in ``heap[:k]``."""
    m = 0
    for j in range(n):
        v = values[j]
        if m < k:
            i = m
            m += 1
            while i > 0 and heap[(i - 1) >> 1] > v:
                heap[i] = heap[(i - 1) >> 1]
                i = (i - 1) >> 1
            heap[i] = v
        elif v > heap[0]:
            i = 0
            while True:
                c = 2 * i + 1
                if c >= k:
                    break
                if c + 1 < k and heap[c + 1] < heap[c]:
                    c += 1
                if heap[c] >= v:
                    break
                heap[i] = heap[c]
                i = c
            heap[i] = v
    return float(heap[0]) if m == k else 0.0


@njit
def _kth_of(values: np.ndarray, n: int, k: int, hs: np.ndarray, hr: np.ndarray) -> float:
    """k-th largest of ``values[:n]`` (0.0 if n < k); uses the heap arrays as scratch."""
    m = 0
    for j in range(n):
        if m < k or values[j] > hs[0]:
            m = _offer(hs, hr, m, k, values[j], j)
    return float(hs[0]) if m == k else 0.0


@njit
def _kth_touched(
    acc: np.ndarray, touched: np.ndarray, n: int, k: int, mask: np.ndarray, hs: np.ndarray, hr: np.ndarray
) -> float:
    """k-th largest accumulator value over the allowed touched docs (0.0 if fewer than k)."""
    m = 0
    for i in range(n):
        d = touched[i]
        if (m < k or acc[d] > hs[0]) and (len(mask) == 0 or mask[d]):
            m = _offer(hs, hr, m, k, acc[d], d)
    return float(hs[0]) if m == k else 0.0


@njit
def _ub(partial: float, bits: np.uint32, active: np.ndarray, n_active: int, next_bound: np.ndarray) -> float:
    """Upper bound of a doc's score: its partial score plus the next bound of each active term it has not
    matched (terms without a bit always count)."""
    ub = partial
    for i in range(n_active):
        u = active[i]
        if u < _BITS:
            ub += next_bound[u] * np.float64(((bits >> np.uint32(u)) & _ONE) ^ _ONE)
        else:
            ub += next_bound[u]
    return ub


@njit
def _set_active(next_bound: np.ndarray, active: np.ndarray) -> int:
    """Terms with tiers left, into ``active``; returns their count."""
    n = 0
    for u in range(len(next_bound)):
        if next_bound[u] > 0:
            active[n] = u
            n += 1
    return n


@njit
def _sort_by_doc(docs: np.ndarray, ix: np.ndarray, n: int, n_docs: int) -> None:
    """Sort ``docs[:n]`` ascending, carrying ``ix`` along (LSD radix sort, 11 bits a pass)."""
    tmp_d, tmp_i = np.empty(n, np.int64), np.empty(n, np.int64)
    counts = np.empty(2049, np.int64)
    shift = 0
    while (n_docs - 1) >> shift:
        counts[:] = 0
        for j in range(n):
            counts[((docs[j] >> shift) & 2047) + 1] += 1
        for b in range(2048):
            counts[b + 1] += counts[b]
        for j in range(n):
            b = (docs[j] >> shift) & 2047
            tmp_d[counts[b]], tmp_i[counts[b]] = docs[j], ix[j]
            counts[b] += 1
        docs[:n], ix[:n] = tmp_d, tmp_i
        shift += 11


@njit
def _find(
    doc_ids: np.ndarray, impacts: np.ndarray, start: np.ndarray, end: np.ndarray, tiers: np.ndarray, d: int
) -> np.float32:
    """Impact of doc ``d`` in the first of ``tiers`` (tiers of one term) that holds it, else 0."""
    for c in tiers:
        p = _gallop(doc_ids, start[c], end[c], d)
        if p < end[c] and doc_ids[p] == d:
            return impacts[p]
    return np.float32(0)


@njit
def _kth_ix(values: np.ndarray, ix: np.ndarray, n: int, k: int, hs: np.ndarray, hr: np.ndarray) -> float:
    """k-th largest of ``values[ix[:n]]`` (0.0 if n < k)."""
    m = 0
    for j in range(n):
        v = values[ix[j]]
        if m < k or v > hs[0]:
            m = _offer(hs, hr, m, k, v, j)
    return float(hs[0]) if m == k else 0.0


@njit
def _pruned(
    tids: np.ndarray,
    k: int,
    mask: np.ndarray,
    index: tuple,
    scratch: tuple,
    hs: np.ndarray,
    hr: np.ndarray,
    limits: tuple,
) -> int:
    """Tier-pruned top k (see the module docstring): the heap size, or -1 when it gave up (the scratch is
    clear again either way). ``limits`` as in :func:`search`."""
    touch_share, probe_cost, scan_ratio = limits[3], limits[4], limits[5]
    term_segments, segment_bounds, segment_max, doc_ids, impacts = index[1:]
    acc, touched, bits, slots = scratch[0], scratch[2], scratch[3], scratch[4]
    n_docs = len(acc)
    terms = np.unique(tids)
    qslots = np.searchsorted(terms, tids)
    n_u = len(terms)
    weights = np.zeros(n_u, np.int64)
    for u in qslots:
        weights[u] += 1
    # float32 sums of n terms are within n * 2**-24 of the real sum: bounds and thresholds get 4x that margin.
    slack = (len(tids) + 2) * 2.0**-22
    grow, shrink = 1.0 + slack, 1.0 - slack
    # One cursor per tier; term u's are first[u]:first[u + 1], and by_term[first[u]:...] by decreasing bound.
    first = np.zeros(n_u + 1, np.int64)
    for u in range(n_u):
        first[u + 1] = first[u] + term_segments[terms[u] + 1] - term_segments[terms[u]]
    n_c = first[n_u]
    start, end, slot = np.empty(n_c, np.int64), np.empty(n_c, np.int64), np.empty(n_c, np.int64)
    bound = np.empty(n_c, np.float64)
    left = 0  # postings not added yet
    for u in range(n_u):
        for c in range(first[u], first[u + 1]):
            seg = term_segments[terms[u]] + c - first[u]
            start[c], end[c], slot[c] = segment_bounds[seg], segment_bounds[seg + 1], u
            bound[c] = np.float64(segment_max[seg]) * weights[u]
            left += end[c] - start[c]
    order = np.argsort(-bound, kind="mergesort")
    by_term, done = np.empty(n_c, np.int64), np.zeros(n_u, np.int64)
    for c in order:
        by_term[first[slot[c]] + done[slot[c]]] = c
        done[slot[c]] += 1
    done[:] = 0
    next_bound = np.empty(n_u, np.float64)
    for u in range(n_u):
        next_bound[u] = bound[by_term[first[u]]]

    # Phase 1: whole tiers, highest bound first, until no untouched doc can reach the k-th partial score.
    n_touched, top, theta, i = 0, np.float32(0), 0.0, 0
    budget = max(n_docs // touch_share, 4 * k)
    while i < n_c:
        c = order[i]
        if min(n_touched + end[c] - start[c], n_docs) > budget:
            for j in range(n_touched):
                acc[touched[j]] = 0
                bits[touched[j]] = 0
            return -1
        u = slot[c]
        weight = np.float32(weights[u])
        bit = _ONE << np.uint32(u) if u < _BITS else np.uint32(0)
        for p in range(np.uint64(start[c]), np.uint64(end[c])):
            d = doc_ids[p]
            touched[n_touched] = d
            n_touched += acc[d] == 0
            v = acc[d] + impacts[p] * weight
            acc[d] = v
            bits[d] |= bit
            top = max(top, v)
        left -= end[c] - start[c]
        i += 1
        done[u] += 1
        next_bound[u] = bound[by_term[first[u] + done[u]]] if done[u] < first[u + 1] - first[u] else 0.0
        if i < n_c and n_touched >= k:
            rest = next_bound.sum() * grow
            if top * shrink > rest:
                theta = _kth_touched(acc, touched, n_touched, k, mask, hs, hr) * shrink
                if theta > rest:
                    break
    if i == n_c:
        theta = _kth_touched(acc, touched, n_touched, k, mask, hs, hr) * shrink
    phase1 = done.copy()
    active = np.empty(n_u, np.int64)
    n_active = _set_active(next_bound, active)

    # Candidates: allowed touched docs whose upper bound reaches theta (clearing the scratch on the way).
    cand, ix = np.empty(n_touched, np.int64), np.empty(n_touched, np.int64)
    partial, matched = np.empty(n_touched, np.float32), np.empty(n_touched, np.uint32)
    n_cand = 0
    for j in range(n_touched):
        d = touched[j]
        v, b = acc[d], bits[d]
        acc[d] = 0
        bits[d] = 0
        if (len(mask) == 0 or mask[d]) and _ub(
            np.float64(v), b, active, n_active, next_bound
        ) * grow >= theta:
            cand[n_cand], ix[n_cand], partial[n_cand], matched[n_cand] = d, n_cand, v, b
            n_cand += 1
    if i < n_c and n_cand * (n_c - i) * probe_cost > left + n_docs:
        return -1
    _sort_by_doc(cand, ix, n_cand, n_docs)  # partial, matched and found stay indexed by ix
    matched1 = matched.copy()
    found = np.zeros((n_cand if i < n_c else 0, n_u), np.float32)

    # Phase 2: complete the candidates tier by tier, dropping those that can no longer reach theta.
    while i < n_c:
        if n_cand > k:
            theta = max(theta, _kth_ix(partial, ix, n_cand, k, hs, hr) * shrink)
            m = 0
            for j in range(n_cand):
                o = ix[j]
                if _ub(np.float64(partial[o]), matched[o], active, n_active, next_bound) * grow >= theta:
                    cand[m], ix[m] = cand[j], o
                    m += 1
            n_cand = m
        c = order[i]
        u = slot[c]
        weight = np.float32(weights[u])
        bit = _ONE << np.uint32(u) if u < _BITS else np.uint32(0)
        lo, e = start[c], end[c]
        if e - lo < scan_ratio * n_cand:
            for j in range(n_cand):
                if not matched[ix[j]] & bit:
                    slots[cand[j]] = ix[j] + 1
            for p in range(np.uint64(lo), np.uint64(e)):
                o = slots[doc_ids[p]] - 1
                if o >= 0:
                    partial[o] += impacts[p] * weight
                    matched[o] |= bit
                    found[o, u] = impacts[p]
            for j in range(n_cand):
                slots[cand[j]] = 0
        else:
            p = lo
            for j in range(n_cand):
                o = ix[j]
                if matched[o] & bit:
                    continue
                p = _gallop(doc_ids, p, e, cand[j])
                if p == e:
                    break
                if doc_ids[p] == cand[j]:
                    partial[o] += impacts[p] * weight
                    matched[o] |= bit
                    found[o, u] = impacts[p]
        i += 1
        done[u] += 1
        next_bound[u] = bound[by_term[first[u] + done[u]]] if done[u] < first[u + 1] - first[u] else 0.0
        n_active = _set_active(next_bound, active)

    # Exact scores of the survivors, summed in query-token order.
    theta = _kth_ix(partial, ix, n_cand, k, hs, hr) * shrink
    vals = np.zeros(n_u, np.float32)
    n = 0
    for j in range(n_cand):
        o = ix[j]
        if partial[o] * grow < theta:
            continue
        for u in range(n_u):
            vals[u] = found[o, u] if len(found) else np.float32(0)
            if vals[u] == 0 and phase1[u] and (u >= _BITS or (matched1[o] >> np.uint32(u)) & _ONE):
                tiers = by_term[first[u] : first[u] + phase1[u]]
                vals[u] = _find(doc_ids, impacts, start, end, tiers, cand[j])
        s = np.float32(0)
        for u in qslots:
            s += vals[u]
        if n < k or _worse(hs[0], hr[0], s, cand[j]):
            n = _offer(hs, hr, n, k, s, cand[j])
    return n


@njit
def _known(tids: np.ndarray) -> np.ndarray:
    """``tids`` without its negative entries (tokens not in the vocabulary)."""
    n = 0
    for t in tids:
        n += t >= 0
    if n == len(tids):
        return tids
    out = np.empty(n, np.int64)
    n = 0
    for t in tids:
        if t >= 0:
            out[n] = t
            n += 1
    return out


@njit
def _search_into(
    tids: np.ndarray,
    k: int,
    mask: np.ndarray,
    index: tuple,
    scratch: tuple,
    hs: np.ndarray,
    hr: np.ndarray,
    limits: tuple,
) -> int:
    """Top-k of one query into the heap (hs, hr); returns its size."""
    prune_min_docs, exhaustive_max, dense_ratio = limits[0], limits[1], limits[2]
    indptr, n_docs = index[0], len(scratch[0])
    total = 0
    for t in tids:
        total += indptr[t + 1] - indptr[t]
    paths = scratch[6]
    if n_docs >= prune_min_docs and total > exhaustive_max:
        n = _pruned(tids, k, mask, index, scratch, hs, hr, limits)
        if n >= 0:
            paths[_PRUNED] += 1
            return n
        paths[_GAVE_UP] += 1
    if total * dense_ratio >= n_docs:
        paths[_DENSE] += 1
        return _dense(tids, k, mask, index, scratch, hs, hr)
    paths[_TOUCHED] += 1
    return _touched(tids, k, mask, index, scratch, hs, hr)


@njit
def search(
    tids: np.ndarray,
    mask: np.ndarray,
    index: tuple,
    scratch: tuple,
    limits: tuple,
    rows: np.ndarray,
    scores: np.ndarray,
) -> int:
    """Top-k rows and scores of one query (token ids in query order, -1 for a token not in the
    vocabulary) into ``rows``/``scores`` (int64 and float32 arrays of length k), best first; returns how
    many there are. Writing into the caller's arrays spares allocating and boxing results.

    ``mask`` is a boolean array over rows, or empty for no filter. ``limits`` (see
    ``indexer.inverted.compiled``) = (fewest docs for which pruning is tried, most postings always added
    exhaustively, dense when postings x this reach n_docs, phase 1 gives up past n_docs / this touched
    docs, phase 2 gives up when candidates x tiers left x this exceed postings left + n_docs, a tier is
    scanned rather than searched when shorter than this x candidates).
    """
    n = _search_into(_known(tids), len(rows), mask, index, scratch, scores, rows, limits)
    _sort_heap(scores, rows, n)
    return n


@njit
def search_batch(
    flat: np.ndarray, offsets: np.ndarray, k: int, index: tuple, scratch: tuple, limits: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`search` for each query ``flat[offsets[q]:offsets[q + 1]]``: rows and scores as (n_queries, k)
    arrays and the number of results of each query."""
    n_q = len(offsets) - 1
    rows, scores = np.zeros((n_q, k), np.int64), np.zeros((n_q, k), np.float32)
    counts = np.zeros(n_q, np.int64)
    no_mask = np.zeros(0, np.bool_)
    for q in range(n_q):
        if offsets[q + 1] > offsets[q]:
            tids = _known(flat[offsets[q] : offsets[q + 1]])
            n = _search_into(tids, k, no_mask, index, scratch, scores[q], rows[q], limits)
            _sort_heap(scores[q], rows[q], n)
            counts[q] = n
    return rows, scores, counts
