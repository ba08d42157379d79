"""Read BEIR-format folders: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Document:
    """One corpus entry: an external id, a title, a body and optional metadata."""

    id: str
    title: str
    text: str
    metadata: dict = field(default_factory=dict)

    @property
    def content(self) -> str:
        """Title and body as one string, the way the encoders and analyzers see it."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def corpus_path(folder: Path) -> Path:
    """The `corpus.jsonl` inside a BEIR folder, or a clear error when there is none."""
    path = Path(folder) / "corpus.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a BEIR folder: {path} does not exist")
    return path


def read_corpus(folder: Path) -> Iterator[Document]:
    """Yield the documents of a BEIR corpus in file order; malformed lines raise with their line number."""
    path = corpus_path(folder)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc_id = str(row["_id"])
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(
                    f"{path}:{number}: expected a JSON object with an '_id' field ({error})"
                ) from None
            yield Document(
                id=doc_id,
                title=str(row.get("title") or ""),
                text=str(row.get("text") or ""),
                metadata=row.get("metadata") or {},
            )
