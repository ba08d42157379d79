"""A loaded collection: the published indices and documents, with the analyzer and encoder they used."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from indexer.analysis import Analyzer, make_analyzer
from indexer.ann import VectorIndex, load_index
from indexer.artifact import read_manifest
from indexer.build import COLLECTION_KIND, read_ids
from indexer.docstore import DocStore
from indexer.encoder import Encoder
from indexer.inverted import InvertedIndex
from indexer.versions import resolve_artifact


@dataclass
class Collection:
    """Everything the online side needs to answer for one collection; rows are internal, ids external."""

    name: str
    path: Path
    manifest: dict
    ids: list[str]
    analyzer: Analyzer
    inverted: InvertedIndex
    vectors: VectorIndex
    docstore: DocStore
    encoder: Encoder

    @classmethod
    def load(cls, root: Path, *, name: str | None = None, encoder: Encoder | None = None) -> Collection:
        """Load the current version of `root` (or a version directory), verifying every checksum."""
        path = resolve_artifact(root)
        manifest = read_manifest(path, kind=COLLECTION_KIND)
        config = manifest["params"]["config"]
        return cls(
            name=name or Path(root).name,
            path=path,
            manifest=manifest,
            ids=read_ids(path),
            analyzer=make_analyzer(config["analyzer"]),
            inverted=InvertedIndex.load(path / "bm25"),
            vectors=load_index(path / "dense"),
            docstore=DocStore.open(path / "docstore"),
            encoder=encoder or Encoder(batch_size=config["encoder_batch_size"]),
        )

    @property
    def version(self) -> str:
        return str(self.manifest["parts"]["version"])

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def row_of(self) -> dict[str, int]:
        return {doc_id: row for row, doc_id in enumerate(self.ids)}

    def external_ids_of(self, rows: list[int] | np.ndarray) -> list[str]:
        return [self.ids[row] for row in (rows.tolist() if isinstance(rows, np.ndarray) else rows)]

    def close(self) -> None:
        self.docstore.close()
