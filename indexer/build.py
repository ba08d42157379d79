"""Build one collection artifact from a corpus: analyse, index terms, store documents, embed, index vectors.

The build writes into a staging directory of a `VersionStore` and is published only when every part and the
manifest are written, so the service never sees a half-built index.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from indexer.analysis import make_analyzer
from indexer.ann import make_index
from indexer.artifact import write_manifest
from indexer.beir import Document, read_corpus
from indexer.config import BuildConfig
from indexer.docstore import DocStore
from indexer.encoder import MODEL_NAME, Encoder
from indexer.inverted import InvertedIndex
from indexer.versions import VersionStore

COLLECTION_KIND = "collection"
IDS_FILE = "ids.txt"


@dataclass
class BuildReport:
    version: str
    path: Path
    n_docs: int
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _stage(name: str, timings: dict[str, float], log: Callable[[str], None]) -> Iterator[None]:
    log(f"{name}...")
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    log(f"{name}: {timings[name]:.1f}s")


def build_collection(
    corpus: Path,
    root: Path,
    config: BuildConfig,
    *,
    encoder: Encoder | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> BuildReport:
    """Build `corpus` (a BEIR folder) into a new version under `root` and publish it."""
    store = VersionStore(root)
    timings: dict[str, float] = {}
    with store.build(keep=config.keep_versions) as (version, staging):
        with _stage("read", timings, log):
            docs = list(islice(read_corpus(corpus), config.limit))
        if not docs:
            raise ValueError(f"{corpus} holds no documents")
        _write_ids(staging, docs)
        with _stage("analyze+bm25", timings, log):
            analyzer = make_analyzer(config.analyzer)
            tokens = (analyzer(doc.content) for doc in tqdm(docs, "analyze", disable=not progress))
            InvertedIndex.build(tokens, k1=config.k1, b=config.b).save(staging / "bm25")
        with _stage("docstore", timings, log):
            DocStore.write(staging / "docstore", ((d.id, {"title": d.title, "text": d.text}) for d in docs))
        with _stage("encode", timings, log):
            encoder = encoder or Encoder(batch_size=config.encoder_batch_size)
            vectors = encoder.encode([doc.content for doc in docs], show_progress=progress)
        with _stage("ann", timings, log):
            index = make_index(config.ann_backend, vectors.shape[1], **config.ann_params)
            index.add(vectors)
            index.save(staging / "dense")
        params = {
            "config": config.model_dump(),
            "corpus": str(corpus),
            "n_docs": len(docs),
            "encoder": {"model": MODEL_NAME, "dim": int(vectors.shape[1]), "normalized": True},
            "seconds": timings,
        }
        write_manifest(staging, kind=COLLECTION_KIND, params=params, parts={"version": version})
    return BuildReport(version=version, path=store.versions_dir / version, n_docs=len(docs), seconds=timings)


def _write_ids(directory: Path, docs: list[Document]) -> None:
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise ValueError(f"duplicate document id {doc.id!r}; ids must be unique")
        seen.add(doc.id)
    (directory / IDS_FILE).write_text("".join(json.dumps(d.id) + "\n" for d in docs), encoding="utf-8")


def read_ids(directory: Path) -> list[str]:
    with (Path(directory) / IDS_FILE).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]
