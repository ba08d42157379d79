"""Encoders: the factory, the persistent embedding cache and the int8 ONNX encoder against the torch one."""

from __future__ import annotations

import hashlib
import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from indexer.config import BuildConfig
from indexer.encoders import ENCODERS, MODEL_NAME, make_encoder
from indexer.encoders.embedding_cache import CachedEncoder, EmbeddingCache, text_digest
from indexer.encoders.onnx_int8 import ONNX_NAME, OnnxEncoder, export_int8, session_options, session_threads
from indexer.encoders.torch import Encoder, resolve_device
from tests.conftest import SCIFACT

DIM = 8


class CountingEncoder:
    """Deterministic unit vectors from a hash of the text; counts the texts it was asked to embed."""

    def __init__(self, name: str = "fake", fingerprint: str = "f1") -> None:
        self.name = name
        self.kind = name
        self.fingerprint = fingerprint
        self.dim = DIM
        self.multilingual = False
        self.device = "cpu"
        self.calls: list[list[str]] = []

    @property
    def encoded(self) -> int:
        return sum(len(call) for call in self.calls)

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256((self.name + text).encode()).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(DIM)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), DIM)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


def scifact_texts(n: int) -> list[str]:
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        docs = [json.loads(line) for line in islice(lines, n)]
    return [f"{d['title']}\n{d['text']}" for d in docs]


def test_make_encoder_refuses_unknown_kind_and_bad_batch() -> None:
    with pytest.raises(
        ValueError, match=r"unknown encoder 'onnx'.*\['e5-multilingual', 'onnx-int8', 'torch'\]"
    ):
        make_encoder("onnx")
    with pytest.raises(ValueError, match="batch_size"):
        make_encoder("torch", batch_size=0)
    with pytest.raises(ValueError, match=r"unknown encoder 'auto'"):
        make_encoder("auto")  # a build resolves auto to a kind first
    assert sorted(ENCODERS) == ["e5-multilingual", "onnx-int8", "torch"]


def test_onnx_threads_follow_the_argument_then_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert session_threads(0) == 0  # onnxruntime's default: one per physical core
    assert session_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # what serve --workers sets in each worker
    assert session_threads(0) == 2
    assert session_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # an OpenMP nesting list: left to onnxruntime
    assert session_threads(0) == 0


def test_minilm_embeds_queries_like_documents(encoder: Encoder) -> None:
    texts = ["vitamin D and bone fractures", "北京"]
    np.testing.assert_array_equal(encoder.encode_queries(texts), encoder.encode(texts))
    assert encoder.multilingual is False


def _cuda_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def test_encoder_device_settings_are_checked_and_a_missing_gpu_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown encoder device 'gpu'; choose auto, cpu, cuda or cuda:N"):
        Encoder(device="gpu")
    with pytest.raises(ValueError, match="encoder_device"):
        BuildConfig(encoder_device="tpu")
    assert BuildConfig().encoder_device == "auto"
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if _cuda_gpus() else "cpu")
    missing = f"cuda:{_cuda_gpus()}"  # one past the last GPU torch sees
    with pytest.raises(ValueError, match=rf"encoder device '{missing}': torch sees {_cuda_gpus()} CUDA"):
        _ = Encoder(device=missing).device
    assert make_encoder("onnx-int8", embedding_cache=False).device == "cpu"  # only torch runs on a GPU


@pytest.mark.skipif(not _cuda_gpus(), reason="needs a CUDA GPU that torch sees")
def test_torch_encoder_on_the_gpu_agrees_with_the_cpu() -> None:
    texts = scifact_texts(64)
    on_gpu = Encoder(batch_size=16)  # auto: the GPU
    assert on_gpu.device == "cuda" and str(on_gpu.model.device).startswith("cuda")
    cosines = np.sum(on_gpu.encode(texts) * Encoder(device="cpu").encode(texts), axis=1)
    assert cosines.min() >= 0.99999


def test_make_encoder_kinds_names_and_cache_wrapping(tmp_path: Path) -> None:
    plain = make_encoder("torch")
    assert isinstance(plain, Encoder) and plain.name == MODEL_NAME and plain.dim == 384
    onnx = make_encoder("onnx-int8", cache_dir=tmp_path, embedding_cache=False)
    assert isinstance(onnx, OnnxEncoder) and onnx.name == ONNX_NAME and onnx.dim == 384
    assert onnx.onnx_dir == tmp_path / "onnx"
    cached = make_encoder("onnx-int8", cache_dir=tmp_path)
    assert isinstance(cached, CachedEncoder) and cached.name == ONNX_NAME
    assert cached.directory == tmp_path / "embeddings"
    assert cached.namespace != CachedEncoder(plain, tmp_path).namespace


def test_cache_encodes_only_misses_and_keeps_order(tmp_path: Path) -> None:
    inner = CountingEncoder()
    cached = CachedEncoder(inner, tmp_path / "emb", write_batch=2)
    first = cached.encode(["a", "b", "c", "a"])
    assert inner.encoded == 3  # "a" twice in one call is embedded once
    assert [len(call) for call in inner.calls] == [2, 1]  # misses go in chunks of write_batch
    np.testing.assert_array_equal(first, inner.encode(["a", "b", "c", "a"]))
    inner.calls.clear()
    second = cached.encode(["c", "d", "a", "a "])
    assert inner.calls == [["d", "a "]]  # only unseen texts; a trailing space is another text
    np.testing.assert_array_equal(second[[0, 2]], first[[2, 0]])
    assert (cached.last.hits, cached.last.encoded) == (2, 2)
    assert cached.encode([]).shape == (0, DIM)


def test_cache_persists_across_instances_and_keeps_kinds_apart(tmp_path: Path) -> None:
    texts = [f"text {i}" for i in range(50)]
    a1 = CountingEncoder("kind-a")
    vectors = CachedEncoder(a1, tmp_path).encode(texts)
    a2 = CountingEncoder("kind-a")
    np.testing.assert_array_equal(CachedEncoder(a2, tmp_path).encode(texts), vectors)
    assert a1.encoded == 50 and a2.encoded == 0  # a new process finds everything
    b = CountingEncoder("kind-b")
    other = CachedEncoder(b, tmp_path).encode(texts)
    assert b.encoded == 50  # another kind never reads kind-a's entries
    assert np.abs((other * vectors).sum(axis=1)).max() < 0.99
    refreshed = CountingEncoder("kind-a", fingerprint="f2")
    CachedEncoder(refreshed, tmp_path).encode(texts[:5])
    assert refreshed.encoded == 5  # new weights (fingerprint) start an empty namespace


def test_cache_ignores_entries_of_another_size(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path, "fake@f1", 4) as cache:
        cache.put_many([text_digest("x")], np.ones((1, 4), dtype=np.float32))
    inner = CountingEncoder()
    CachedEncoder(inner, tmp_path).encode(["x"])
    assert inner.encoded == 1
    with pytest.raises(ValueError, match="NUL"):
        EmbeddingCache(tmp_path / "other", "bad\x00name", 4)


def test_rebuild_of_unchanged_items_encodes_nothing(tmp_path: Path) -> None:
    from indexer.build import build_collection
    from indexer.config import BuildConfig

    config = BuildConfig(limit=40)
    inner = CountingEncoder()
    build_collection(
        SCIFACT, tmp_path / "root", config, encoder=CachedEncoder(inner, tmp_path / "c"), progress=False
    )
    assert inner.encoded == 40
    rebuilt = CountingEncoder()
    build_collection(
        SCIFACT, tmp_path / "root", config, encoder=CachedEncoder(rebuilt, tmp_path / "c"), progress=False
    )
    assert rebuilt.calls == []


def test_cache_in_front_of_the_real_model(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = scifact_texts(12)
    calls: list[int] = []
    model_encode = encoder.model.encode

    def counting(sentences: list[str], **kwargs: object) -> np.ndarray:
        calls.append(len(sentences))
        return model_encode(sentences, **kwargs)

    monkeypatch.setattr(encoder.model, "encode", counting)
    cached = CachedEncoder(encoder, tmp_path)
    first = cached.encode(texts[:8])
    again = CachedEncoder(encoder, tmp_path).encode(texts)
    assert calls == [8, 4]  # the second call only sent the four new texts to the model
    np.testing.assert_allclose(again[:8], first, atol=1e-6)
    np.testing.assert_allclose(again, encoder.encode(texts), atol=1e-5)


def test_export_is_reused(onnx_dir: Path, tmp_path: Path) -> None:
    files = sorted(onnx_dir.iterdir())
    assert [f.name for f in files if f.suffix != ".onnx"] == [".export.lock"]  # no temporary leftovers
    (model,) = [f for f in files if f.suffix == ".onnx"]
    stamp = model.stat().st_mtime_ns
    assert export_int8(onnx_dir) == model and model.stat().st_mtime_ns == stamp
    # An export in another folder is used where one is looked for, and nothing is written elsewhere.
    assert export_int8(tmp_path / "elsewhere", look_in=[onnx_dir]) == model
    assert not (tmp_path / "elsewhere").exists()


def scifact_queries(n: int) -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in islice(lines, n)]


def test_onnx_int8_agrees_with_torch_on_scifact(onnx_encoder: OnnxEncoder, encoder: Encoder) -> None:
    docs = scifact_texts(50)
    int8 = onnx_encoder.encode(docs)
    assert int8.dtype == np.float32 and int8.shape == (50, 384)
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosine = (encoder.encode(docs) * int8).sum(axis=1)
    assert cosine.min() >= 0.99  # measured min 0.9982, mean 0.9988 (batches of 16; recipe 1: 0.9963)
    assert cosine.mean() >= 0.995
    queries = scifact_queries(50)
    alone = np.vstack([onnx_encoder.encode([q]) for q in queries])  # one at a time, as the service does
    cosine = (encoder.encode(queries) * alone).sum(axis=1)
    assert cosine.min() >= 0.99  # measured min 0.9979, mean 0.9987 (recipe 1: 0.9952)


def scifact_test_queries() -> list[str]:
    with (SCIFACT / "qrels" / "test.tsv").open(encoding="utf-8") as lines:
        judged = {line.split("\t")[0] for line in lines if not line.startswith("query-id")}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    return [row["text"] for row in rows if row["_id"] in judged]


def test_int8_query_vectors_stay_close_to_fp32_on_every_scifact_test_query(
    onnx_encoder: OnnxEncoder, encoder: Encoder
) -> None:
    queries = scifact_test_queries()
    assert len(queries) == 300
    int8 = np.vstack([onnx_encoder.encode_queries([q]) for q in queries])  # one at a time, as served
    cosine = (encoder.encode(queries) * int8).sum(axis=1)
    assert cosine.min() >= 0.99  # measured min 0.9954, mean 0.9987 (recipe 1: 0.9920)


def test_onnx_session_is_set_up_for_one_short_query_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a worker's share of the cores
    options = session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session_options(2).intra_op_num_threads == 2


def test_onnx_attention_mask_survives_padding(onnx_encoder: OnnxEncoder, encoder: Encoder) -> None:
    texts = [*scifact_texts(6), "short query"]
    batched = onnx_encoder.encode(texts)  # one batch: the short text is mostly padding
    assert ((encoder.encode(texts) * batched).sum(axis=1)).min() >= 0.99  # measured 0.9982
    empty = onnx_encoder.encode([""])  # only [CLS] [SEP]: degenerate but a unit vector near torch's
    assert abs(float(np.linalg.norm(empty)) - 1.0) < 1e-5
    assert float((encoder.encode([""]) * empty).sum()) >= 0.95  # measured 0.9947
    assert onnx_encoder.encode([]).shape == (0, 384)
    np.testing.assert_array_equal(onnx_encoder.encode_queries(["a query"]), onnx_encoder.encode(["a query"]))
    assert onnx_encoder.multilingual is False


def long_text(chars: int = 20_000) -> str:
    """SciFact abstracts joined and cut to `chars` characters: a document pasted as a query."""
    return " ".join(scifact_texts(60))[:chars]


def test_torch_encoder_reads_the_first_256_tokens_of_a_20000_character_text(encoder: Encoder) -> None:
    text = long_text()
    assert len(text) == 20_000 and encoder.model.max_seq_length == 256
    vector = encoder.encode([text])
    assert vector.shape == (1, 384) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # 3,000 characters are well over 256 tokens, so both texts are cut to the same first 256.
    np.testing.assert_allclose(vector, encoder.encode([text[:3000]]), atol=1e-6)


def test_onnx_encoder_truncates_a_20000_character_text(onnx_encoder: OnnxEncoder) -> None:
    text = long_text()
    assert onnx_encoder.max_length == 256
    vector = onnx_encoder.encode([text])
    assert vector.shape == (1, 384) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    np.testing.assert_allclose(vector, onnx_encoder.encode([text[:3000]]), atol=1e-6)
