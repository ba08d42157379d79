"""Read evaluation inputs (BEIR queries and qrels) and read/write TREC run files, with clear errors.

A TREC run file has six whitespace-separated columns per line: `qid Q0 docid rank score tag`. As in
trec_eval, reading keeps the scores and ignores the rank column: documents are ordered by score descending,
ties by docid descending (see `ranker.metrics.rank_scored`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

from ranker.metrics import Run, rank_scored

Qrels = dict[str, dict[str, int]]
ScoredRun = dict[str, dict[str, float]]

_EXAMPLES = 5


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a UTF-8 text file with their 1-based line numbers."""
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line.rstrip("\n")


def read_queries(path: Path) -> dict[str, str]:
    """Read a BEIR `queries.jsonl` (`{"_id": ..., "text": ...}` per line) into `{qid: text}`."""
    queries: dict[str, str] = {}
    for number, line in _lines(path):
        try:
            row = json.loads(line)
            queries[str(row["_id"])] = str(row["text"])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path}:{number}: expected a JSON object with '_id' and 'text' fields ({error})"
            ) from None
    return queries


def read_qrels(path: Path) -> Qrels:
    """Read judgments into `{qid: {docid: relevance}}`.

    Accepts BEIR's TSV (`query-id corpus-id score`, header line optional) and TREC qrels
    (`qid iteration docid relevance`). The same (qid, docid) judged twice is an error.
    """
    qrels: Qrels = {}
    for number, line in _lines(path):
        fields = line.split()
        if number == 1 and fields[:2] == ["query-id", "corpus-id"]:
            continue
        if len(fields) not in (3, 4):
            raise ValueError(
                f"{path}:{number}: expected 3 columns (query-id corpus-id score) or 4 (qid iter docid rel), "
                f"got {len(fields)}: {line!r}"
            )
        qid, doc, grade = fields[0], fields[-2], fields[-1]
        try:
            relevance = int(grade)
        except ValueError:
            raise ValueError(f"{path}:{number}: relevance must be an integer, got {grade!r}") from None
        judged = qrels.setdefault(qid, {})
        if doc in judged:
            raise ValueError(f"{path}:{number}: query {qid!r} judges document {doc!r} a second time")
        judged[doc] = relevance
    return qrels


def read_run(path: Path) -> ScoredRun:
    """Read a six-column TREC run file into `{qid: {docid: score}}` (the rank column is ignored)."""
    run: ScoredRun = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise ValueError(
                f"{path}:{number}: expected 6 columns (qid Q0 docid rank score tag), "
                f"got {len(fields)}: {line!r}"
            )
        qid, _, doc, rank, score_text, _ = fields
        try:
            int(rank)
            score = float(score_text)
        except ValueError:
            raise ValueError(
                f"{path}:{number}: rank must be an integer and score a number, "
                f"got {rank!r} and {score_text!r}"
            ) from None
        if not math.isfinite(score):
            raise ValueError(f"{path}:{number}: score must be finite, got {score_text!r}")
        docs = run.setdefault(qid, {})
        if doc in docs:
            raise ValueError(f"{path}:{number}: query {qid!r} lists document {doc!r} a second time")
        docs[doc] = score
    return run


def _scored_rows(docs: Sequence[str] | Mapping[str, float]) -> list[tuple[str, float]]:
    if isinstance(docs, Mapping):
        return [(doc, float(docs[doc])) for doc in rank_scored(docs)]
    # A bare ranked list gets descending scores n, n-1, ..., 1 so that reading it back keeps the order.
    return [(doc, float(len(docs) - index)) for index, doc in enumerate(docs)]


def write_run(path: Path, run: Run, tag: str = "searchrec", k: int | None = None) -> Path:
    """Write a run as a TREC run file, queries in sorted order, at most `k` documents each.

    A `{docid: score}` query is written in trec_eval's order (score desc, docid desc) with its scores; a
    ranked list is written in its order with scores n, n-1, ..., 1, so `read_run` gives back the same order.
    """
    if not tag or any(ch.isspace() for ch in tag):
        raise ValueError(f"run tag must be a non-empty string without whitespace, got {tag!r}")
    if k is not None and k < 1:
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for qid in sorted(run):
            for rank, (doc, score) in enumerate(_scored_rows(run[qid])[:k], start=1):
                if any(ch.isspace() for ch in qid + doc):
                    raise ValueError(
                        f"query and doc ids in a run file cannot hold whitespace: {qid!r} {doc!r}"
                    )
                out.write(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n")
    return path


def check_qrels_match_queries(
    qrels: Mapping[str, object], queries: Collection[str], qrels_path: Path | str, queries_path: Path | str
) -> None:
    """Refuse judgments whose query ids match none of the queries (usually the wrong split or dataset)."""
    if not qrels:
        raise ValueError(f"{qrels_path} holds no judgments")
    if not any(qid in queries for qid in qrels):
        raise ValueError(
            f"no query id in {qrels_path} matches a query in {queries_path}: qrels ids "
            f"{sorted(qrels)[:_EXAMPLES]} vs query ids {sorted(queries)[:_EXAMPLES]}"
        )


def check_run_docids(run: Run, corpus_ids: Collection[str], run_name: str = "run") -> None:
    """Refuse a run that returns doc ids outside the corpus (usually a run from another corpus)."""
    unknown = sorted({doc for docs in run.values() for doc in docs if doc not in corpus_ids})
    if unknown:
        raise ValueError(
            f"{run_name} holds {len(unknown)} doc id(s) not in the corpus, e.g. {unknown[:_EXAMPLES]}"
        )
