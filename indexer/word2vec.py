"""Word2Vec on analysed text and on behaviour sequences (item2vec), and saving and loading the vectors.

Training wraps gensim's `Word2Vec` with a typed, seeded `Word2VecParams` (`indexer.schemas`); with
`workers=1` two runs with the same seed give identical vectors in any process (words are seeded through a
CRC32 `hashfxn`, not Python's salted `hash`), and `save_vectors` writes them as identical bytes. Sentence
vectors built from these word vectors are `indexer.sentence_vectors`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from indexer.ann.base import normalize_rows
from indexer.schemas import ITEM2VEC_PARAMS, Word2VecParams

VECTORS_FILE = "vectors.kv"
PARAMS_FILE = "params.json"


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
    """Train item vectors on per-user item sequences (each user's item ids in time order).

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


def save_vectors(directory: Path, kv: KeyedVectors, params: Word2VecParams | None = None) -> list[str]:
    """Save vectors (the matrix as its own memory-mappable .npy) and params; return the file names written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in directory.iterdir()}
    # gensim pickles a log of lifecycle events (each with its time and the file's path): the same vectors
    # saved twice would differ in bytes. Without the log two builds write identical files.
    kv.lifecycle_events = None
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
