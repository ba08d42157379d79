"""BEIR-format folders: `corpus.jsonl` (read by the build as `_id`, `title`, `text` items, `indexer.sources`),
`queries.jsonl` and `qrels/<split>.tsv` (read by `jobs.evaluation.datasets`)."""

from __future__ import annotations

from pathlib import Path


def corpus_path(folder: Path) -> Path:
    """The `corpus.jsonl` inside a BEIR folder, or a clear error when there is none."""
    path = Path(folder) / "corpus.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a BEIR folder: {path} does not exist")
    return path
