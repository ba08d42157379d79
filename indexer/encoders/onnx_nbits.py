"""8-bit linear layers for an ONNX graph: each MatMul by a constant weight becomes a `MatMulNBits`.

`MatMulNBits` (onnxruntime's ``com.microsoft`` domain) holds a weight of K x N as N columns of K/`block`
blocks; every block stores `bits`-bit integers and one float scale (symmetric: the zero point is the default
2^(bits-1), so none is stored). With ``accuracy_level`` 4 onnxruntime multiplies in int8: it quantises the
activations too, per block of `block` values along K at run time, far finer than a whole tensor at a time
(`quantize_dynamic`'s way), so outliers in one block (GELU outputs have them) do not crush the rest.

Written by hand rather than with onnxruntime's ``MatMulNBitsQuantizer``, which needs the ``onnx_ir`` package
(not a dependency here) and is built for 4 bits; the layout below is the operator's documented one.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

DOMAIN = "com.microsoft"
INT8_COMPUTE = 4  # MatMulNBits accuracy_level: int8 activations and products (blockwise), float accumulation


def to_nbits(src: Path, dst: Path, pattern: re.Pattern[str], *, bits: int = 8, block: int = 128) -> list[str]:
    """Write `src` to `dst` with every MatMul whose name matches `pattern` and whose second input is a
    constant (a weight) replaced by a `MatMulNBits`; return the names of the nodes replaced."""
    import onnx
    from onnx import helper, numpy_helper

    if bits != 8:
        raise ValueError(f"bits must be 8 (the only width this module packs), got {bits}")
    if block < 16 or block & (block - 1):
        raise ValueError(f"block must be a power of two >= 16, got {block}")
    model = onnx.load(str(src))
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    nodes, replaced = [], []
    for node in graph.node:
        if node.op_type != "MatMul" or not pattern.search(node.name) or node.input[1] not in weights:
            nodes.append(node)
            continue
        packed, scales, (k, n) = _pack(numpy_helper.to_array(weights[node.input[1]]), bits, block)
        graph.initializer.remove(weights.pop(node.input[1]))
        names = (f"{node.input[1]}_q{bits}", f"{node.input[1]}_scales")
        graph.initializer.extend(
            [numpy_helper.from_array(packed, names[0]), numpy_helper.from_array(scales, names[1])]
        )
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], *names],
                list(node.output),
                name=f"{node.name}_nbits",
                domain=DOMAIN,
                K=k,
                N=n,
                bits=bits,
                block_size=block,
                accuracy_level=INT8_COMPUTE,
            )
        )
        replaced.append(node.name)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(opset.domain == DOMAIN for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    onnx.save(model, str(dst))
    return replaced


def _pack(weight: np.ndarray, bits: int, block: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A K x N float weight as MatMulNBits wants it: (N, K/block, block) unsigned integers (the signed value
    plus 2^(bits-1)) and N * K/block float32 scales; K is padded with zeros to whole blocks."""
    k, n = weight.shape
    blocks = -(-k // block)
    padded = np.zeros((blocks * block, n), dtype=np.float32)
    padded[:k] = weight
    columns = padded.T.reshape(n, blocks, block)
    top = 2 ** (bits - 1) - 1
    scales = np.abs(columns).max(axis=2) / top
    scales[scales == 0] = 1.0
    values = np.clip(np.round(columns / scales[..., None]), -top - 1, top).astype(np.int32) + 2 ** (bits - 1)
    return values.astype(np.uint8), scales.reshape(-1).astype(np.float32), (k, n)
