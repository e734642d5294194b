"""ONNX front end, QDQ part: a QDQ ONNX model -> the int8 IR, keeping its quantisation.

onnxruntime's static quantiser (QDQ format) writes float operators between
DequantizeLinear (of int8/uint8 weights, int32 biases and int8/uint8 activations) and
QuantizeLinear. Here Q -> DQ pairs become the quantisation of the float tensor before
them, DQ of an initializer becomes a float constant whose integers are remembered, and
the stripped float graph is translated by `onnx_float`. Then every layer gets the
scales the file states: weights as stored (`onnx_weights`), int32 biases as stored,
activations from their QuantizeLinear. QOperator models are first rewritten to QDQ
(`onnx_qoperator`).

uint8 activations become int8 exactly: q8 = q - 128 with zero point zp - 128 holds the
same real values, and every int8 kernel depends only on q - zp and clamps at the ends of
the range, which move by the same 128. Asymmetric (uint8) weights are exact where
`q - zp` fits int8 per output channel and re-quantised where not (see `onnx_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from mnv2gen.errors import UnsupportedError, quoted
from mnv2gen.frontend.float_model import FloatModel
from mnv2gen.frontend.int8_assembly import QUANTIZED_INPUT, assemble
from mnv2gen.frontend.onnx_float import translate
from mnv2gen.frontend.onnx_fold import fold_node
from mnv2gen.frontend.onnx_graph import Node, OnnxGraph, read_onnx, take_attrs
from mnv2gen.frontend.onnx_qoperator import has_qoperators, to_qdq
from mnv2gen.frontend.onnx_weights import QuantConst, Weights
from mnv2gen.frontend.validate import LIMITS
from mnv2gen.ir import Graph, QuantParams
from mnv2gen.zoo_float import INPUT

_Q, _DQ = "QuantizeLinear", "DequantizeLinear"
# Activation types: the offset that turns them into int8 (q8 = q - offset).
_ACTIVATION_OFFSET = {np.dtype(np.int8): 0, np.dtype(np.uint8): 128}
_CONST_TYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32))
_QUANT_ATTRS = {"axis": 1, "saturate": 1, "block_size": 0, "output_dtype": 0}


class _Stripper:
    """Removes Q/DQ nodes from an OnnxGraph, remembering what they stated."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.g = graph
        self.consts = dict(graph.constants)
        self.alias: dict[str, str] = {}  # DQ output -> float tensor before the Q
        # Q output -> (float input, int8 quantisation, the file's (type, scale, zp))
        self.q_outputs: dict[str, tuple[str, QuantParams, tuple]] = {}
        self.act_quant: dict[str, QuantParams] = {}
        self.const_quant: dict[str, QuantConst] = {}
        self.uint8_activations = 0

    def fail(self, node: Node, what: str, hint: str = "") -> UnsupportedError:
        return UnsupportedError(f"{self.g.label}: {node.describe()} {what}", hint)

    def _params(self, node: Node) -> tuple[np.ndarray, np.ndarray, int]:
        """Return (scale, zero point, axis) of a Q or DQ node as the file states them."""
        attrs = take_attrs(self.g, node, _QUANT_ATTRS)
        if attrs["block_size"]:
            raise self.fail(node, f"uses blocked quantisation (block_size "
                            f"{quoted(attrs['block_size'])})", "quantise per tensor or per channel")
        names = node.inputs[1:3]
        if not names or not names[0] or any(n not in self.consts for n in names if n):
            raise self.fail(node, "has a missing or non-constant scale or zero point",
                            "QDQ models state scales and zero points as initializers")
        scale = np.asarray(self.consts[names[0]], np.float32)
        if scale.ndim > 1 or not scale.size or not np.all(
                np.isfinite(scale) & (scale >= LIMITS.min_scale) & (scale <= LIMITS.max_scale)):
            raise self.fail(node, f"has scale {scale.reshape(-1)[:4].tolist()}; scales must "
                            f"be finite and from {LIMITS.min_scale:.3g} to "
                            f"{LIMITS.max_scale:.3g}", "the file is corrupt")
        # ONNX's default zero point is uint8 for QuantizeLinear; DQ takes its input's type.
        source = self.consts.get(node.inputs[0]) if node.op_type == _DQ else None
        if source is not None:
            default = source.dtype
        elif node.op_type == _DQ and node.inputs[0] in self.q_outputs:
            default = self.q_outputs[node.inputs[0]][2][0]
        else:
            default = np.dtype(np.uint8)
        zp = (self.consts[names[1]] if len(names) > 1 and names[1]
              else np.zeros(scale.shape, default))
        if np.asarray(zp).size not in (1, scale.size):
            raise self.fail(node, f"has {scale.size} scales and {np.asarray(zp).size} zero "
                            "points", "the file is corrupt")
        if not isinstance(attrs["axis"], int):
            raise self.fail(node, f"has axis {quoted(attrs['axis'])}", "the file is corrupt")
        return scale, np.asarray(zp), attrs["axis"]

    def quantize(self, node: Node) -> None:
        scale, zp, axis = self._params(node)
        x = node.inputs[0]
        if x in self.consts:
            self.consts[node.outputs[0]] = self._fold_quantize(node, x, scale, zp, axis)
            return
        if zp.dtype not in _ACTIVATION_OFFSET:
            raise self.fail(node, f"quantises to {zp.dtype} (zero point type)",
                            "mnv2gen compiles 8-bit activations: QuantType.QInt8 or QUInt8")
        if scale.size != 1:
            raise self.fail(node, f"quantises activation {quoted(x)} per axis",
                            "activations must be quantised per tensor")
        offset = _ACTIVATION_OFFSET[zp.dtype]
        self.uint8_activations += offset != 0
        zp_value = int(zp.reshape(-1)[0])
        params = QuantParams((float(scale.reshape(-1)[0]),), (zp_value - offset,))
        stated = (zp.dtype, float(scale.reshape(-1)[0]), zp_value)
        self.q_outputs[node.outputs[0]] = (x, params, stated)

    def _fold_quantize(self, node: Node, x: str, scale: np.ndarray, zp: np.ndarray,
                       axis: int) -> np.ndarray:
        """Return QuantizeLinear of the float initializer `x` as ONNX defines it (float32
        division, rounding half to even, saturation): float weights quantised in the graph,
        as PyTorch's QDQ exports store them."""
        data = np.asarray(self.consts[x])
        if not np.issubdtype(data.dtype, np.floating) or zp.dtype not in _CONST_TYPES:
            raise self.fail(node, f"quantises the {data.dtype} initializer {quoted(x)} to "
                            f"{zp.dtype}", "weights must quantise to int8 or uint8, biases "
                            "to int32")
        shape = [1] * data.ndim
        if scale.size > 1:
            if not -data.ndim <= axis < data.ndim or data.shape[axis] != scale.size:
                raise self.fail(node, f"has {scale.size} scales for axis {axis} of "
                                f"{quoted(x)} {data.shape}", "the file is corrupt")
            shape[axis % data.ndim] = -1
        if not np.all(np.isfinite(data)):
            raise self.fail(node, f"quantises the initializer {quoted(x)}, which holds NaN "
                            "or infinity", "the file is corrupt")
        info = np.iinfo(zp.dtype)
        with np.errstate(over="ignore"):  # saturation is ONNX's rule
            q = (np.rint(data.astype(np.float32) / scale.reshape(shape or ()))
                 + zp.astype(np.float64).reshape(shape or ()))
        q = np.clip(q, info.min, info.max).astype(zp.dtype)
        q.flags.writeable = False
        return q

    def dequantize(self, node: Node) -> None:
        scale, zp, axis = self._params(node)
        q, out = node.inputs[0], node.outputs[0]
        if q in self.q_outputs:
            x, params, stated = self.q_outputs[q]
            if scale.size != 1 or (zp.dtype, float(scale.reshape(-1)[0]),
                                   int(zp.reshape(-1)[0])) != stated:
                raise self.fail(node, f"dequantises {quoted(q)} with other parameters than its "
                                "QuantizeLinear")
            self.act_quant[x] = params
            self.alias[out] = self.alias.get(x, x)
        elif q in self.consts:
            data = np.asarray(self.consts[q])
            if data.dtype not in _CONST_TYPES or zp.dtype != data.dtype:
                raise self.fail(node, f"dequantises {data.dtype} initializer {quoted(q)} with "
                                f"a {zp.dtype} zero point", "weights must be int8 or uint8 "
                                "and biases int32")
            if scale.size > 1 and not -data.ndim <= axis < data.ndim:
                raise self.fail(node, f"has axis {axis} for a rank-{data.ndim} initializer",
                                "the file is corrupt")
            axis %= max(data.ndim, 1)  # ignored for a per-tensor scale, as in ONNX
            shape = [1] * data.ndim
            if scale.size > 1:
                if data.ndim == 0 or data.shape[axis] != scale.size:
                    raise self.fail(node, f"has {scale.size} scales for axis {axis} of "
                                    f"{quoted(q)} {data.shape}", "the file is corrupt")
                shape[axis] = -1
            real = ((data.astype(np.float32) - zp.astype(np.float32).reshape(shape or ()))
                    * scale.reshape(shape or ()))
            self.consts[out] = real.astype(np.float32)
            self.const_quant[out] = QuantConst(data, scale.reshape(-1), zp.reshape(-1), axis)
        else:
            raise self.fail(node, f"dequantises {quoted(q)}, which is neither an initializer "
                            "nor a QuantizeLinear output", "int8 graph inputs are not supported")

    def strip(self) -> OnnxGraph:
        """Return the float graph without Q/DQ nodes (inputs renamed through the pairs)."""
        kept = []
        for node in self.g.nodes:
            args = [self.consts.get(n) if n else None for n in node.inputs]
            if node.op_type == "Constant":
                self.consts[node.outputs[0]] = fold_node(self.g, node, args, None)
            elif node.op_type == _Q:
                self.quantize(node)
            elif node.op_type == _DQ:
                self.dequantize(node)
            else:
                inputs = tuple(self.alias.get(n, n) for n in node.inputs)
                if any(n in self.q_outputs for n in inputs):
                    raise self.fail(node, "reads an int8 QuantizeLinear output directly")
                kept.append(replace(node, inputs=inputs))
        if self.g.output_name in self.q_outputs:
            raise UnsupportedError(
                f"{self.g.label}: the model output {quoted(self.g.output_name)} is quantised (no "
                "DequantizeLinear after its QuantizeLinear)", "mnv2gen compiles models with "
                "a float output: end the model with DequantizeLinear")
        output = self.alias.get(self.g.output_name, self.g.output_name)
        return self.g.replace(nodes=tuple(kept), constants=self.consts, output_name=output)


def _activation_quant(model: FloatModel, act_quant: dict, label: str) -> dict:
    """Return {float tensor: QuantParams}; the last-defined ONNX alias with one wins."""
    quant = {}
    for onnx_name, float_name in model.onnx_names.items():
        if onnx_name in act_quant:
            quant[float_name] = act_quant[onnx_name]
    for name in (INPUT, *(layer.name for layer in model.layers)):
        if name not in quant:
            node = model.source_nodes.get(name, "input")
            raise UnsupportedError(f"{label}: tensor {quoted(name)} (node {node}) has no "
                                   "QuantizeLinear; mixed float/int8 models are not supported",
                                   "quantise every operator (onnxruntime quantize_static)")
    return quant


@dataclass(frozen=True)
class Conversion:
    """A QDQ/QOperator file's IR and how its tensors correspond, for comparisons.

    `names`: the file's quantised tensor (QuantizeLinear or QLinear output) -> the IR tensor
    holding the same values (int8; uint8 values minus 128); `requantised`: IR weight tensor
    -> mask of its output channels re-quantised (not exact), for the layers that have any.
    """

    graph: Graph
    names: Mapping[str, str]
    requantised: Mapping[str, np.ndarray]


def convert(data: bytes, label: str, base_dir: Path | None = None) -> Conversion:
    """Return the Conversion of a QDQ or QOperator ONNX model given as bytes (see
    `load_qdq` for the errors)."""
    graph = read_onnx(data, label, base_dir=base_dir)
    notes = list(graph.notes)
    quantised = {}  # the file's quantised tensor -> its QuantizeLinear output in `graph`
    if has_qoperators(graph):
        graph, quantised = to_qdq(graph)
        notes.append("QOperator form (QLinear* operators) rewritten as QDQ before import "
                     "(exact: the same integers and scales)")
    stripper = _Stripper(graph)
    model = translate(stripper.strip())
    quant = _activation_quant(model, stripper.act_quant, label)
    weights = Weights(model, stripper.const_quant, label)
    result = assemble(model, quant, weights, label)
    if stripper.uint8_activations:
        notes.append("uint8 activations converted to int8 by shifting their zero points by "
                     "-128 (exact)")
    requantised = weights.requantised.note()
    if requantised:
        notes.append(requantised)
    names = {}
    for q, (x, _, _) in stripper.q_outputs.items():
        ir = QUANTIZED_INPUT if model.onnx_names.get(x) == INPUT else model.onnx_names.get(x)
        if ir in result.tensors:
            names[q] = ir
    for file_name, q in quantised.items():
        if q in names:
            names[file_name] = names.pop(q)
    return Conversion(result.replace(notes=tuple(notes)), MappingProxyType(names),
                      MappingProxyType(dict(weights.requantised.masks)))


def load_qdq(data: bytes, label: str, base_dir: Path | None = None) -> Graph:
    """Return the int8 IR Graph of a QDQ or QOperator ONNX model given as bytes.

    Raises ModelError for malformed files and UnsupportedError for dynamic quantisation,
    16-bit or blocked quantisation, float islands and operators outside the supported set.
    The graph's `notes` say what the conversion changed and whether it is exact.
    """
    return convert(data, label, base_dir).graph
