"""The ``onnx-int8`` encoder: all-MiniLM-L6-v2 exported to ONNX, quantised to int8, run by onnxruntime on CPU.

Export (`export_int8`, 7-12 s on two shared cores, once per model and recipe): the packaged weights are
traced with ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``; needs the ``onnx`` package)
into a graph with dynamic batch and sequence axes that returns the last hidden states. Recipe 2: each of the
36 linear layers of the six transformer layers becomes a `MatMulNBits` with 8-bit weights in blocks of 128
inputs, multiplied in int8 with the activations quantised per block at run time
(`indexer.encoders.onnx_nbits`); ``onnxruntime.quantization.quantize_dynamic`` then stores the embedding
tables as uint8. Measured on SciFact
against the fp32 vectors (one query at a time / documents in batches of 16): minimum cosine 0.9954 / 0.9982,
where recipe 1 (per-channel uint8 weights with one activation scale per tensor, the six feed-forward
down-projections left in fp32 because GELU outputs quantise badly per tensor) reached 0.9920 / 0.9962; and a
query took 4.6 ms of CPU instead of 5.8 (the fp32 down-projections were most of the weights read per query).
A vector moves slightly with its batch neighbours (cosine > 0.999 between a text alone and in a batch).

The file goes to ``<onnx_dir>/all-MiniLM-L6-v2-int8-r<recipe>-<fingerprint>.onnx`` (written to a temporary
name and renamed, under a file lock so that processes starting together export once): ``ROOT/cache/onnx``
when a build passes an index root's cache folder, else `default_onnx_dir` (``$SEARCHREC_CACHE_DIR/onnx``,
else ``$XDG_CACHE_HOME/searchrec/onnx``, else ``~/.cache/searchrec/onnx``). An export found in one of
`look_in`'s folders is used instead of exporting again: the service reads an index root's export but never
writes into the root (`indexer.encoders.make_query_encoder`).

Encoding tokenises with the packaged tokenizer (truncation at the model's 256 tokens, as
sentence-transformers does), sorts texts by length so batches carry little padding, and applies mean pooling
over real tokens and L2 normalisation, like the ``torch`` encoder. One text (a search query) is run at its
own length, never padded.

The session is set up for what a service asks of it, one short query at a time (`session_options`): a
sequential graph with every optimisation, `session_threads` intra-op threads (the worker's share of the
cores) and no spin-waiting, so idle threads give the cores back to the other branches and workers instead
of polling for the next operator. A session with a pool of intra-op threads does not survive a `fork` (the
threads stay in the parent), so a forked process (`serve --workers`) sets such sessions aside (unused and
never destroyed: their destructor would wait for the missing threads) and makes its own on first use; a
one-thread session runs on the caller's thread and is kept, shared with the parent's pages.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import tempfile
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.encoders.base import (
    MODEL_NAME,
    ONNX_INT8,
    hub_offline,
    max_seq_length,
    model_fingerprint,
    packaged_dim,
    packaged_model_dir,
)
from indexer.encoders.onnx_nbits import to_nbits

ONNX_NAME = f"{MODEL_NAME}-{ONNX_INT8}"
PAD_ID = 0  # [PAD] in the packaged vocabulary
RECIPE = 2  # bump when the export or quantisation settings change: file names and cache namespaces follow
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
LINEAR_NODES = re.compile(r"/encoder/layer\.\d+/.+/MatMul$")  # every projection of the 6 layers
NBITS_BLOCK = 128  # inputs per quantisation block (64: min cosine +0.002, 9% slower; 32: +0.003, 23%)


def default_onnx_dir() -> Path:
    """Where exports go when no index cache folder is given."""
    if os.environ.get("SEARCHREC_CACHE_DIR"):
        return Path(os.environ["SEARCHREC_CACHE_DIR"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "searchrec" / "onnx"


def export_int8(
    onnx_dir: Path | None = None, model_dir: Path | None = None, *, look_in: Sequence[Path] = ()
) -> Path:
    """Path of the int8 ONNX model: the export in `onnx_dir` or, failing that, in one of `look_in`'s
    folders; if none has it, exported and quantised into `onnx_dir` first."""
    model_dir = Path(model_dir or packaged_model_dir())
    onnx_dir = Path(onnx_dir or default_onnx_dir())
    name = f"{MODEL_NAME}-int8-r{RECIPE}-{model_fingerprint(model_dir)[:12]}.onnx"
    for folder in (onnx_dir, *look_in):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    path = onnx_dir / name
    onnx_dir.mkdir(parents=True, exist_ok=True)
    with _export_lock(onnx_dir):
        if not path.is_file():  # another process may have exported it while this one waited
            _export_int8(model_dir, path)
    return path


@contextmanager
def _export_lock(onnx_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``onnx_dir/.export.lock``: one export at a time per folder."""
    with (onnx_dir / ".export.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export_int8(model_dir: Path, path: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        fp32, linear, int8 = (Path(tmp) / f"{name}.onnx" for name in ("fp32", "linear8", "int8"))
        _export_fp32(model_dir, fp32)
        if len(to_nbits(fp32, linear, LINEAR_NODES, bits=8, block=NBITS_BLOCK)) != 36:
            raise RuntimeError(f"{fp32}: not 36 nodes match {LINEAR_NODES.pattern}; the exporter changed")
        with _quiet_root_logger():
            quantize_dynamic(
                linear,
                int8,
                weight_type=QuantType.QUInt8,
                op_types_to_quantize=["Gather"],  # the embedding tables: the linear layers are done
                extra_options={"DefaultTensorType": TensorProto.FLOAT},  # MatMulNBits has no shape function
            )
        os.replace(int8, path)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop the quantizer's advice to pre-process (it changes nothing here: same vectors, same speed).

    The quantizer logs through the root logger, which configures a stderr handler when there is none; the
    root logger's handlers are restored afterwards.
    """
    root = logging.getLogger()
    handlers = list(root.handlers)

    def advice(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Please consider to run pre-processing")

    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)


def _export_fp32(model_dir: Path, out: Path) -> None:
    """Trace the transformer (without pooling) into `out` with dynamic batch and sequence axes."""
    hub_offline()
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # A model of its own: tracing leaves the module unfit for eager use afterwards, so it is discarded.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    # The example batch holds padding, so the traced graph keeps the attention-mask path.
    example = tokenizer(["a short text", "a longer text, so that this batch has padding"], padding=True)
    args = tuple(torch.tensor(example[name], dtype=torch.long) for name in INPUTS)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python-level branches fixed for this model
        torch.onnx.export(
            LastHiddenState(model),
            args,
            str(out),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def session_threads(threads: int) -> int:
    """onnxruntime's intra-op threads for `threads` (0: unset). onnxruntime ignores OMP_NUM_THREADS, but a
    process told to use that many threads (a `serve --workers` worker) means its encoder too; with neither,
    0 lets onnxruntime use one thread per physical core."""
    if threads:
        return threads
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:  # not a plain number (OpenMP also takes lists): onnxruntime's default
        return 0


def session_options(threads: int = 0) -> Any:  # onnxruntime.SessionOptions, imported lazily
    """Options for short single inputs on shared cores: `session_threads(threads)` intra-op threads, one
    inter-op thread, sequential execution, every graph optimisation, and no spin-waiting (a spinning
    thread holds its core for a while after each operator; on a loaded 2-core machine that doubled a
    query's time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = session_threads(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


_ENCODERS: weakref.WeakSet[OnnxEncoder] = weakref.WeakSet()
_INHERITED: list[Any] = []  # sessions a fork carried over: kept, never run nor destroyed (that would crash)


def _drop_pooled_sessions_after_fork() -> None:
    for encoder in list(_ENCODERS):
        if "session" in encoder.__dict__ and session_threads(encoder.threads) != 1:
            _INHERITED.append(encoder.__dict__.pop("session"))


os.register_at_fork(after_in_child=_drop_pooled_sessions_after_fork)


class OnnxEncoder:
    """Batched, L2-normalised int8 ONNX embeddings; exports on first use if the model file is missing.

    `onnx_dir` is where the model is exported; `look_in`, other folders whose export is used instead."""

    kind = ONNX_INT8
    multilingual = False
    device = "cpu"  # onnxruntime's CPU provider

    def __init__(
        self,
        *,
        batch_size: int = 64,
        onnx_dir: Path | None = None,
        threads: int = 0,
        look_in: Sequence[Path] = (),
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads < 0:
            raise ValueError(
                f"threads must be >= 0 (0: OMP_NUM_THREADS if set, else one per physical core), got {threads}"
            )
        self.batch_size = batch_size
        self.onnx_dir = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir()
        self.look_in = tuple(Path(folder) for folder in look_in)
        self.threads = threads
        self.max_length = max_seq_length()
        _ENCODERS.add(self)

    @property
    def name(self) -> str:
        return ONNX_NAME

    @property
    def fingerprint(self) -> str:
        """Identifies the weights and the export recipe; part of the embedding-cache namespace."""
        return f"r{RECIPE}-{model_fingerprint()}"

    @property
    def dim(self) -> int:
        return packaged_dim()

    @cached_property
    def model_path(self) -> Path:
        return export_int8(self.onnx_dir, look_in=self.look_in)

    @cached_property
    def session(self) -> Any:  # onnxruntime.InferenceSession, imported lazily
        import onnxruntime as ort

        options = session_options(self.threads)
        return ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])

    @cached_property
    def tokenizer(self) -> Any:  # a `tokenizers.Tokenizer`, imported lazily
        """The packaged fast tokenizer, read with the `tokenizers` library itself: transformers' wrapper
        around the same file would import torch, about 0.3 GB a serving process never needs. The file's own
        truncation (128) and fixed padding are replaced by the model's length and no padding."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(packaged_model_dir() / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_length)
        return tokenizer

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed texts as float32 rows of unit length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]
        order = np.argsort([-len(row) for row in ids], kind="stable")
        pad = PAD_ID
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="encode", unit="batch", disable=not show_progress):
            rows = order[start : start + self.batch_size]
            out[rows] = self._embed([ids[i] for i in rows], pad)
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Queries are embedded like documents (MiniLM has no query form); one query (what a search asks
        for) skips the batching, run at its own length."""
        if len(texts) != 1:
            return self.encode(texts)
        return self._embed([self.tokenizer.encode(texts[0]).ids], PAD_ID)

    def _embed(self, batch: list[list[int]], pad: int) -> np.ndarray:
        width = max(len(row) for row in batch)
        input_ids = np.full((len(batch), width), pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for i, row in enumerate(batch):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
