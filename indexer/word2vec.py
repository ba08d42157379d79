"""Word2Vec on analysed text and on behaviour sequences (item2vec), and sentence vectors from word vectors.

Training wraps gensim's `Word2Vec` with a typed, seeded `Word2VecParams`; with `workers=1` two runs with the
same seed give identical vectors. Sentence vectors follow Arora, Liang and Ma (2017), "A Simple but
Tough-to-Beat Baseline for Sentence Embeddings": each word is weighted by a / (a + p(w)) and, optionally, the
projection on the first principal component of the document vectors is removed. `SentenceVectorizer` keeps
the weights and that component, so a query typed online is embedded exactly like the documents were offline.

Defaults measured on SciFact (english analyzer, exact cosine search, nDCG@10 on the train qrels, seeds 0-2,
`workers=1`; "-pc" = first component removed):

    epochs  mean    mean-pc  SIF a=1e-3  SIF a=1e-4  SIF a=1e-4 -pc  SIF a=3e-5
    10      0.414   0.422    0.464       0.489       0.491           0.489
    20      0.500   0.507    0.540       0.547       0.545           0.530
    40      0.557   0.561    -           0.567       0.563           -        (seed 0 only)

SIF beats the plain mean at every budget; removing the component helps the mean but is within noise for
SIF. Hence `weighting="sif"`, `sif_a=1e-4`, `remove_pc=False`, `epochs=20` (40 gains 0.02 for twice the time).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse

from indexer.ann.base import normalize_rows

Weighting = Literal["mean", "sif"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
VECTORS_FILE = "vectors.kv"
PARAMS_FILE = "params.json"
VECTORIZER_FILE = "vectorizer.json"
WEIGHTS_FILE = "word_weights.npy"
COMPONENT_FILE = "component.npy"
DEFAULT_SIF_A = 1e-4  # best of 1e-3 ... 1e-5 on SciFact train (see the module docstring)
DEFAULT_REMOVE_PC = False  # within noise for SIF on SciFact train (see the module docstring)


class Word2VecParams(BaseModel):
    """Training parameters; the defaults suit an analysed (lower-cased, stemmed) corpus of about 1M tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vector_size: int = Field(default=100, ge=1, description="Dimension of the word vectors.")
    window: int = Field(default=5, ge=1, description="Largest distance between a word and a context word.")
    shrink_windows: bool = Field(
        default=True, description="Sample the window per word in [1, window]; False for sets."
    )
    min_count: int = Field(
        default=2, ge=1, description="Words seen fewer times are dropped from the vocabulary."
    )
    epochs: int = Field(default=20, ge=1, description="Passes over the corpus.")
    sg: Literal[0, 1] = Field(default=1, description="1 = skip-gram, 0 = CBOW.")
    negative: int = Field(default=5, ge=1, description="Negative samples per positive pair.")
    sample: float = Field(
        default=1e-3, ge=0, description="Down-sampling threshold for frequent words (0 = off)."
    )
    alpha: float = Field(default=0.025, gt=0, description="Initial learning rate.")
    seed: int = Field(default=0, description="Seed for initial vectors and sampling.")
    workers: int = Field(
        default=1, ge=1, description="Training threads; only workers=1 is bit-for-bit reproducible."
    )


# Item2vec (Barkan and Koenigstein, 2016): skip-gram over what one user consumed; keep rare items.
ITEM2VEC_PARAMS = Word2VecParams(vector_size=64, window=10, min_count=1, epochs=20)


def _stable_hash(text: str) -> int:
    """Seed hash for gensim that, unlike `hash`, does not change between processes."""
    return zlib.crc32(text.encode("utf-8"))


def _train(sentences: Sequence[Sequence[str]], params: Word2VecParams) -> KeyedVectors:
    if isinstance(sentences, Iterator):
        raise ValueError("Word2Vec reads the corpus several times; pass a list, not a one-shot iterator")
    if not any(len(s) for s in sentences):
        raise ValueError("cannot train Word2Vec: every token list is empty")
    model = Word2Vec(
        vector_size=params.vector_size,
        window=params.window,
        shrink_windows=params.shrink_windows,
        min_count=params.min_count,
        sg=params.sg,
        hs=0,
        negative=params.negative,
        sample=params.sample,
        alpha=params.alpha,
        seed=params.seed,
        workers=params.workers,
        hashfxn=_stable_hash,
    )
    model.build_vocab(sentences)
    if not model.wv.index_to_key:
        raise ValueError(f"cannot train Word2Vec: no token occurs min_count={params.min_count} times or more")
    model.train(sentences, total_examples=model.corpus_count, epochs=params.epochs)
    return model.wv


def train_text_word2vec(
    token_lists: Sequence[Sequence[str]], params: Word2VecParams | None = None
) -> KeyedVectors:
    """Train word vectors on analysed documents (a list, or an iterable that can be read several times)."""
    return _train(token_lists, params or Word2VecParams())


def train_item2vec(
    sequences: Sequence[Sequence[str]], params: Word2VecParams | None = None, *, as_sets: bool = False
) -> KeyedVectors:
    """Train item vectors on per-user item sequences (`sequences_by_user(...).values()`).

    With `as_sets=True` order is ignored: the window covers the longest sequence and is not shrunk, so every
    pair of items in a sequence is a training pair (cost grows with the square of the sequence length).
    gensim cuts sequences after 10,000 items.
    """
    params = params or ITEM2VEC_PARAMS
    sequences = [list(map(str, s)) for s in sequences]
    if as_sets:
        longest = max((len(s) for s in sequences), default=1)
        params = params.model_copy(update={"window": max(longest, 1), "shrink_windows": False})
    return _train(sequences, params)


def item_vectors(
    ids: Sequence[str], kv: KeyedVectors, *, normalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 (n, dim) vectors for `ids` and a mask of the ids the model knows (unknown ids get zeros)."""
    vectors = np.zeros((len(ids), kv.vector_size), dtype=np.float32)
    present = np.array([kv.has_index_for(i) for i in ids], dtype=bool)
    if present.any():
        rows = [kv.get_index(i) for i, ok in zip(ids, present, strict=True) if ok]
        vectors[present] = kv.vectors[rows]
    return (normalize_rows(vectors) if normalize else vectors), present


def _word_probabilities(kv: KeyedVectors, word_freqs: Mapping[str, float] | None) -> np.ndarray:
    if word_freqs is None:
        if "count" not in kv.expandos:
            raise ValueError("these KeyedVectors carry no word counts; pass word_freqs={word: count}")
        counts = np.asarray(kv.expandos["count"], dtype=np.float64)
    else:
        counts = np.array([float(word_freqs.get(w, 0.0)) for w in kv.index_to_key], dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("word frequencies sum to zero; pass positive counts in word_freqs")
    return counts / total


@dataclass
class SentenceVectorizer:
    """Maps token lists to L2-normalised vectors: weighted average of word vectors, minus a stored component.

    Tokens the model does not know are ignored; a token list with no known token maps to the zero vector.
    """

    kv: KeyedVectors
    weighting: Weighting
    weights: np.ndarray  # (vocabulary,) float32, one weight per word of `kv`
    component: np.ndarray | None  # (dim,) unit vector removed from every sentence vector, or None
    sif_a: float = DEFAULT_SIF_A

    @classmethod
    def fit(
        cls,
        token_lists: Sequence[Sequence[str]],
        kv: KeyedVectors,
        *,
        weighting: Weighting = "sif",
        sif_a: float = DEFAULT_SIF_A,
        word_freqs: Mapping[str, float] | None = None,
        remove_pc: bool = DEFAULT_REMOVE_PC,
    ) -> SentenceVectorizer:
        """Compute word weights and, when `remove_pc`, the first principal component of the documents."""
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; choose one of {list(WEIGHTINGS)}")
        if sif_a <= 0:
            raise ValueError(f"sif_a must be > 0, got {sif_a}")
        if weighting == "sif":
            weights = (sif_a / (sif_a + _word_probabilities(kv, word_freqs))).astype(np.float32)
        else:
            weights = np.ones(len(kv.index_to_key), dtype=np.float32)
        vectorizer = cls(kv=kv, weighting=weighting, weights=weights, component=None, sif_a=sif_a)
        if remove_pc:
            vectorizer.component = _first_component(vectorizer._averages(token_lists))
        return vectorizer

    def _averages(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Weighted average of the known word vectors of each token list, before component removal."""
        key_to_index = self.kv.key_to_index
        rows: list[int] = []
        cols: list[int] = []
        for row, tokens in enumerate(token_lists):
            known = [key_to_index[t] for t in tokens if t in key_to_index]
            rows.extend([row] * len(known))
            cols.extend(known)
        n, vocabulary = len(token_lists), len(self.weights)
        col_array = np.asarray(cols, dtype=np.int64)
        data = self.weights[col_array].astype(np.float32)
        matrix = sparse.csr_matrix(
            (data, (np.asarray(rows, dtype=np.int64), col_array)), shape=(n, vocabulary)
        )
        known_counts = np.bincount(np.asarray(rows, dtype=np.int64), minlength=n).astype(np.float32)
        averages = np.asarray(matrix @ self.kv.vectors, dtype=np.float32)
        return averages / np.maximum(known_counts, 1.0)[:, None]

    def transform(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised (rows with no known token stay zero)."""
        vectors = self._averages(token_lists)
        if self.component is not None:
            vectors -= np.outer(vectors @ self.component, self.component)
        return normalize_rows(vectors)

    def vector(self, tokens: Sequence[str]) -> np.ndarray:
        """One (dim,) float32 vector, computed exactly as `transform` computes a document's."""
        return self.transform([tokens])[0]

    def save(self, directory: Path) -> list[str]:
        """Write weights, component and settings (word vectors: `save_vectors`); return the file names."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / WEIGHTS_FILE, self.weights)
        files = [WEIGHTS_FILE]
        if self.component is not None:
            np.save(directory / COMPONENT_FILE, self.component)
            files.append(COMPONENT_FILE)
        settings = {"weighting": self.weighting, "sif_a": self.sif_a, "remove_pc": self.component is not None}
        (directory / VECTORIZER_FILE).write_text(json.dumps(settings, indent=2), encoding="utf-8")
        return [*files, VECTORIZER_FILE]

    @classmethod
    def load(cls, directory: Path, kv: KeyedVectors) -> SentenceVectorizer:
        directory = Path(directory)
        settings = json.loads((directory / VECTORIZER_FILE).read_text(encoding="utf-8"))
        weights = np.load(directory / WEIGHTS_FILE, mmap_mode="r")  # read-only: shared by server workers
        if len(weights) != len(kv.index_to_key):
            raise ValueError(
                f"{directory}: {len(weights)} word weights for a vocabulary of {len(kv.index_to_key)}"
            )
        component = np.load(directory / COMPONENT_FILE, mmap_mode="r") if settings["remove_pc"] else None
        return cls(
            kv=kv,
            weighting=settings["weighting"],
            weights=weights,
            component=component,
            sif_a=settings["sif_a"],
        )


def _first_component(vectors: np.ndarray) -> np.ndarray | None:
    """Unit first right-singular vector of `vectors` (uncentred, as in Arora et al.), from the Gram matrix.

    None when every vector is zero (no document has a known word): there is no direction to remove.
    """
    gram = vectors.astype(np.float64).T @ vectors.astype(np.float64)
    if not gram.any():
        return None
    _, eigenvectors = np.linalg.eigh(gram)
    return eigenvectors[:, -1].astype(np.float32)


def document_vectors(
    token_lists: Sequence[Sequence[str]],
    kv: KeyedVectors,
    weighting: Weighting = "sif",
    *,
    sif_a: float = DEFAULT_SIF_A,
    word_freqs: Mapping[str, float] | None = None,
    remove_pc: bool = DEFAULT_REMOVE_PC,
) -> np.ndarray:
    """(n, dim) float32 L2-normalised document vectors; use `SentenceVectorizer.fit` to also embed queries."""
    vectorizer = SentenceVectorizer.fit(
        token_lists, kv, weighting=weighting, sif_a=sif_a, word_freqs=word_freqs, remove_pc=remove_pc
    )
    return vectorizer.transform(token_lists)


def save_vectors(directory: Path, kv: KeyedVectors, params: Word2VecParams | None = None) -> list[str]:
    """Save vectors (the matrix as its own memory-mappable .npy) and params; return the file names written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in directory.iterdir()}
    kv.save(str(directory / VECTORS_FILE), separately=["vectors"])
    (directory / PARAMS_FILE).write_text(
        (params or Word2VecParams()).model_dump_json(indent=2), encoding="utf-8"
    )
    written = {p.name for p in directory.iterdir()} - before
    return sorted(written | {VECTORS_FILE, PARAMS_FILE})


def load_vectors(directory: Path, *, mmap: bool = True) -> tuple[KeyedVectors, Word2VecParams]:
    """Load what `save_vectors` wrote; with `mmap` the vector matrix is memory-mapped read-only.

    The `.kv` file is a pickle: load only artifacts whose checksums were verified.
    """
    directory = Path(directory)
    kv = KeyedVectors.load(str(directory / VECTORS_FILE), mmap="r" if mmap else None)
    params = Word2VecParams.model_validate_json((directory / PARAMS_FILE).read_text(encoding="utf-8"))
    return kv, params
