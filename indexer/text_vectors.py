"""Word2Vec document vectors: train on the analysed corpus, embed documents and queries the same way.

Written under ``word2vec/`` of a version:

- ``model/``: the word vectors (``.npy``), their vocabulary (JSON) and training parameters
  (`indexer.word2vec.save_vectors`; no pickle).
- ``vectorizer/``: the query-side `SentenceVectorizer` state (word weights, removed component, settings).
- ``index/``: a `VectorIndex` over the document vectors (rows = collection rows).
- ``params.json``: the analyzer of the training tokens, the weighting and the training parameters.

Defaults follow `indexer.word2vec`: SIF weighting with a = 1e-4, the first principal component kept
(the best of the weightings measured there on SciFact train; removing it was within noise).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexer.analysis import make_analyzer
from indexer.ann import VectorIndex, load_index, make_index
from indexer.config import TextVectorsConfig
from indexer.sentence_vectors import SentenceVectorizer
from indexer.word2vec import load_vectors, save_vectors, train_text_word2vec

PARAMS_FILE = "params.json"


def write_text_vectors(
    directory: Path,
    token_lists: Sequence[Sequence[str]],
    analyzer: str,
    config: TextVectorsConfig,
    ann_backend: str,
    ann_params: dict,
) -> dict:
    """Train, embed and index; return the params written (`trained: False` with a reason when impossible)."""
    try:
        kv = train_text_word2vec(token_lists, config.params)
    except ValueError as error:  # e.g. a tiny corpus where no word reaches min_count
        return {"trained": False, "reason": str(error)}
    directory = Path(directory)
    save_vectors(directory / "model", kv, config.params)
    vectorizer = SentenceVectorizer.fit(
        token_lists, kv, weighting=config.weighting, sif_a=config.sif_a, remove_pc=config.remove_pc
    )
    vectorizer.save(directory / "vectorizer")
    vectors = vectorizer.transform(token_lists)
    index = make_index(ann_backend, vectors.shape[1], **ann_params)
    index.add(vectors)
    index.save(directory / "index")
    params = {
        "trained": True,
        "analyzer": analyzer,
        "weighting": config.weighting,
        "sif_a": config.sif_a,
        "remove_pc": config.remove_pc,
        "vocabulary": len(kv.index_to_key),
        "dim": int(vectors.shape[1]),
        "docs_without_known_word": int((np.linalg.norm(vectors, axis=1) == 0).sum()),
        "params": config.params.model_dump(),
        "ann": {"backend": ann_backend, **index.params},
    }
    (directory / PARAMS_FILE).write_text(json.dumps(params, indent=2), encoding="utf-8")
    return params


class TextVectors:
    """Query side: analyse a text, embed it like the documents, search the document-vector index."""

    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        self.params: dict = json.loads((directory / PARAMS_FILE).read_text(encoding="utf-8"))
        kv, _ = load_vectors(directory / "model")
        self.vectorizer = SentenceVectorizer.load(directory / "vectorizer", kv)
        self.index: VectorIndex = load_index(directory / "index")
        self.analyzer_name: str = self.params["analyzer"]

    def embed(self, text: str) -> np.ndarray:
        """(dim,) float32 unit vector of `text` (zero when no word of it is known)."""
        return self.vectorizer.vector(make_analyzer(self.analyzer_name)(text))

    def search(
        self, text: str, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` rows and cosine scores for `text`; empty when it holds no known word."""
        vector = self.embed(text)
        if not vector.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows, scores = self.index.search(vector[None, :], min(k, len(self.index)), allowed=allowed)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]
