"""Word2Vec on analysed text and on behaviour sequences (item2vec), and saving and loading the vectors.

Training wraps gensim's `Word2Vec` with a typed, seeded `Word2VecParams` (`indexer.schemas`); with
`workers=1` two runs with the same seed give identical vectors in any process (words are seeded through a
CRC32 `hashfxn`, not Python's salted `hash`), and `save_vectors` writes them as identical bytes. Sentence
vectors built from these word vectors are `indexer.sentence_vectors`.

Saved vectors are plain data, never a pickle, so loading them runs no code from the file:

- ``vectors.npy``: float32 (vocabulary, dim), row i = word i; memory-mapped read-only when loaded.
- ``vocabulary.json``: ``{"words": [...], "counts": [...]}``, the words in row order and their training
  counts (what SIF weighting reads), UTF-8.
- ``params.json``: the training parameters.

Artifacts of format 1 held a gensim ``vectors.kv`` (a pickle) instead; `load_vectors` refuses them.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from indexer.ann.base import normalize_rows
from indexer.artifact import ArtifactError
from indexer.schemas import ITEM2VEC_PARAMS, Word2VecParams

VECTORS_FILE = "vectors.npy"
VOCABULARY_FILE = "vocabulary.json"
PARAMS_FILE = "params.json"
PICKLED_VECTORS_FILE = "vectors.kv"  # what format 1 wrote: gensim's pickle, never loaded


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
    """Save the vectors as ``.npy``, the vocabulary as JSON and the params; return the file names written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / VECTORS_FILE, np.ascontiguousarray(kv.vectors, dtype=np.float32), allow_pickle=False)
    counts = kv.expandos.get("count")
    vocabulary = {
        "words": [str(word) for word in kv.index_to_key],
        "counts": None if counts is None else np.asarray(counts, dtype=np.int64).tolist(),
    }
    (directory / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
    (directory / PARAMS_FILE).write_text(
        (params or Word2VecParams()).model_dump_json(indent=2), encoding="utf-8"
    )
    return sorted([VECTORS_FILE, VOCABULARY_FILE, PARAMS_FILE])


def load_vectors(directory: Path, *, mmap: bool = True) -> tuple[KeyedVectors, Word2VecParams]:
    """Load what `save_vectors` wrote, without unpickling anything; with `mmap` the vector matrix is
    memory-mapped read-only. `ArtifactError` for vectors saved as a pickle (format 1) or that disagree with
    their vocabulary."""
    directory = Path(directory)
    if not (directory / VOCABULARY_FILE).is_file() and (directory / PICKLED_VECTORS_FILE).is_file():
        raise ArtifactError(
            f"{directory / PICKLED_VECTORS_FILE}: Word2Vec vectors saved as a gensim pickle (artifact format "
            "1); searchrec loads no pickles. Rebuild the index (searchrec build).",
            path=directory,
            file=PICKLED_VECTORS_FILE,
        )
    vectors = np.load(directory / VECTORS_FILE, mmap_mode="r" if mmap else None, allow_pickle=False)
    vocabulary = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
    words, counts = vocabulary["words"], vocabulary.get("counts")
    if vectors.ndim != 2 or len(words) != len(vectors) or (counts is not None and len(counts) != len(words)):
        raise ArtifactError(
            f"{directory}: {VECTORS_FILE} holds {vectors.shape} vectors for {len(words)} words in "
            f"{VOCABULARY_FILE}",
            path=directory,
            file=VECTORS_FILE,
        )
    kv = KeyedVectors(vector_size=int(vectors.shape[1]), count=0, dtype=vectors.dtype)
    kv.vectors = vectors
    kv.index_to_key = list(words)
    kv.key_to_index = {word: row for row, word in enumerate(words)}
    if counts is not None:
        kv.expandos["count"] = np.asarray(counts, dtype=np.int64)
    params = Word2VecParams.model_validate_json((directory / PARAMS_FILE).read_text(encoding="utf-8"))
    return kv, params
