"""8-bit `MatMulNBits` linear layers: packing, padding of a partial block, and what is left alone."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from indexer.encoders.onnx_nbits import to_nbits


def _graph(path: Path, weights: dict[str, np.ndarray]) -> None:
    """x (batch, K) through one MatMul per named weight, chained."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, current = [], "x"
    for name in weights:
        nodes.append(helper.make_node("MatMul", [current, f"{name}.w"], [f"{name}.y"], name=name))
        current = f"{name}.y"
    first, last = next(iter(weights.values())), list(weights.values())[-1]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, first.shape[0]])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, [None, last.shape[1]])],
        [numpy_helper.from_array(w.astype(np.float32), f"{n}.w") for n, w in weights.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_matching_matmuls_become_8_bit_and_stay_close(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # K = 200 is not a whole number of 128-blocks: the second block is padded with zeros.
    weights = {
        "/layer.0/dense/MatMul": rng.standard_normal((200, 48)),
        "/head/MatMul": rng.standard_normal((48, 8)),
    }
    _graph(tmp_path / "fp32.onnx", weights)
    replaced = to_nbits(tmp_path / "fp32.onnx", tmp_path / "q8.onnx", re.compile(r"/layer\.\d+/"), block=128)
    assert replaced == ["/layer.0/dense/MatMul"]  # the head does not match: left in float
    x = rng.standard_normal((5, 200)).astype(np.float32)
    exact, approx = _run(tmp_path / "fp32.onnx", x), _run(tmp_path / "q8.onnx", x)
    cosine = (exact * approx).sum(axis=1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(approx, axis=1)
    assert cosine.min() >= 0.999  # measured 0.99980


def test_nbits_refuses_other_widths_and_blocks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bits must be 8"):
        to_nbits(tmp_path / "a.onnx", tmp_path / "b.onnx", re.compile("x"), bits=4)
    with pytest.raises(ValueError, match="block must be a power of two >= 16, got 100"):
        to_nbits(tmp_path / "a.onnx", tmp_path / "b.onnx", re.compile("x"), block=100)
