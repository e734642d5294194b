"""ONNX front end, QDQ part: a QDQ int8 ONNX model -> the int8 IR, keeping its quantisation.

onnxruntime's static quantiser (QDQ format) writes float operators between
DequantizeLinear (of int8 weights, int32 biases and int8 activations) and
QuantizeLinear. Here Q -> DQ pairs become the quantisation of the float tensor before
them, DQ of an initializer becomes a float constant whose integers are remembered, and
the stripped float graph is translated by `onnx_float`. Then every layer gets the
scales the file states: int8 weights as stored, int32 biases as stored (quantised with
input_scale * weight_scale when the file has a float bias), activations from their
QuantizeLinear. QOperator models and uint8 activations or weights are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnv2gen.errors import UnsupportedError, quoted
from mnv2gen.frontend.float_model import FloatModel
from mnv2gen.frontend.int8_assembly import assemble
from mnv2gen.frontend.onnx_float import translate
from mnv2gen.frontend.onnx_fold import fold_node
from mnv2gen.frontend.onnx_graph import Node, OnnxGraph, read_onnx, take_attrs
from mnv2gen.frontend.validate import LIMITS
from mnv2gen.ir import DType, Graph, OpKind, QuantParams, Tensor
from mnv2gen.zoo_float import INPUT, FloatLayer

_Q, _DQ = "QuantizeLinear", "DequantizeLinear"


@dataclass(frozen=True)
class QuantConst:
    """An integer initializer read through DequantizeLinear: real = scale * (q - zp)."""

    data: np.ndarray
    scale: np.ndarray  # float32, one per slice along `axis` (or one)
    zero_point: np.ndarray
    axis: int


class _Stripper:
    """Removes Q/DQ nodes from an OnnxGraph, remembering what they stated."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.g = graph
        self.consts = dict(graph.constants)
        self.alias: dict[str, str] = {}  # DQ output -> float tensor before the Q
        self.q_outputs: dict[str, tuple[str, QuantParams]] = {}
        self.act_quant: dict[str, QuantParams] = {}
        self.const_quant: dict[str, QuantConst] = {}

    def fail(self, node: Node, what: str, hint: str = "") -> UnsupportedError:
        return UnsupportedError(f"{self.g.label}: {node.describe()} {what}", hint)

    def _params(self, node: Node) -> tuple[np.ndarray, np.ndarray, int]:
        """Return (scale, zero point, axis) of a Q or DQ node; rejects uint8."""
        attrs = take_attrs(self.g, node, {"axis": 1, "saturate": 1})
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
        # ONNX's default zero point is uint8, except where DQ reads an int32 initializer.
        source = self.consts.get(node.inputs[0]) if node.op_type == _DQ else None
        default = np.int32 if source is not None and source.dtype == np.int32 else np.uint8
        zp = (self.consts[names[1]] if len(names) > 1 and names[1]
              else np.zeros(scale.shape, default))
        if zp.dtype != np.int8 and not (node.op_type == _DQ and zp.dtype == np.int32):
            raise self.fail(node, f"uses {zp.dtype} quantisation (zero point type)",
                            "mnv2gen needs int8 activations and weights (QuantType.QInt8 "
                            "for both activation_type and weight_type)")
        if np.asarray(zp).size not in (1, scale.size):
            raise self.fail(node, f"has {scale.size} scales and {np.asarray(zp).size} zero "
                            "points", "the file is corrupt")
        if not isinstance(attrs["axis"], int):
            raise self.fail(node, f"has axis {quoted(attrs['axis'])}", "the file is corrupt")
        return scale, np.asarray(zp), attrs["axis"]

    def quantize(self, node: Node) -> None:
        scale, zp, _ = self._params(node)
        x = node.inputs[0]
        if scale.size != 1:
            raise self.fail(node, f"quantises activation {quoted(x)} per axis",
                            "activations must be quantised per tensor")
        params = QuantParams((float(scale.reshape(-1)[0]),), (int(zp.reshape(-1)[0]),))
        if x in self.consts:
            raise self.fail(node, f"quantises the float initializer {quoted(x)} at run time",
                            "store weights pre-quantised (DequantizeLinear of int8)")
        self.q_outputs[node.outputs[0]] = (x, params)

    def dequantize(self, node: Node) -> None:
        scale, zp, axis = self._params(node)
        q, out = node.inputs[0], node.outputs[0]
        if q in self.q_outputs:
            x, params = self.q_outputs[q]
            if (float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0])) != (
                    params.scale[0], params.zero_point[0]) or scale.size != 1:
                raise self.fail(node, f"dequantises {quoted(q)} with other parameters than its "
                                "QuantizeLinear")
            self.act_quant[x] = params
            self.alias[out] = self.alias.get(x, x)
        elif q in self.consts:
            data = np.asarray(self.consts[q])
            if data.dtype not in (np.int8, np.int32):
                raise self.fail(node, f"dequantises {data.dtype} initializer {quoted(q)}",
                                "weights must be int8 (symmetric) and biases int32")
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
                kept.append(Node(node.index, node.op_type, node.domain, inputs, node.outputs,
                                 node.attrs))
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


class _Weights:
    """Builds the int8 weight and int32 bias tensors of a layer from the QDQ constants."""

    def __init__(self, model: FloatModel, const_quant: dict, label: str) -> None:
        self.model, self.cq, self.label = model, const_quant, label

    def fail(self, layer: FloatLayer, what: str, hint: str = "") -> UnsupportedError:
        node = self.model.source_nodes.get(layer.name, -1)
        return UnsupportedError(f"{self.label}: node {node} ({layer.kind.value} "
                                f"{quoted(layer.name)}) {what}", hint)

    def __call__(self, layer: FloatLayer, x: Tensor) -> tuple[Tensor, Tensor]:
        w_name, b_name = self.model.weight_sources[layer.name]
        if w_name not in self.cq:
            raise self.fail(layer, f"has float weights {quoted(w_name)}",
                            "weights must be DequantizeLinear of int8 initializers")
        wq = self.cq[w_name]
        axis = 3 if layer.kind is OpKind.DEPTHWISE_CONV_2D else 0
        channels = layer.weights.shape[axis]
        if wq.data.dtype != np.int8 or np.any(wq.zero_point != 0):
            raise self.fail(layer, "has asymmetric or non-int8 weights",
                            "weights must be symmetric int8 (zero point 0)")
        if wq.scale.size not in (1, channels):
            raise self.fail(layer, f"has {wq.scale.size} weight scales for {channels} outputs")
        shape = [1] * layer.weights.ndim
        shape[axis] = -1
        scale = wq.scale.reshape(shape)
        q = np.rint(layer.weights / np.where(scale == 0, 1, scale))  # all-zero channels
        if np.abs(q).max() > 127 or not np.array_equal((q.astype(np.float32) * scale)
                                                      .astype(np.float32), layer.weights):
            raise self.fail(layer, "has weights that changed after dequantisation (a Mul, "
                            "BatchNormalization or alpha folded into them)",
                            "fold those before quantising")
        w_quant = QuantParams(tuple(float(s) for s in wq.scale), (0,) * wq.scale.size, axis)
        weights = Tensor(f"{layer.name}/weights", layer.weights.shape, DType.INT8, w_quant,
                         q.astype(np.int8))
        return weights, self._bias(layer, x, wq.scale, b_name)

    def _bias(self, layer: FloatLayer, x: Tensor, w_scale: np.ndarray, b_name: str) -> Tensor:
        expected = (np.float32(x.scale) * w_scale).astype(np.float32)
        expected = np.broadcast_to(expected, layer.bias.shape)
        bq = self.cq.get(b_name)
        if (bq is not None and bq.data.dtype == np.int32 and not np.any(bq.zero_point)
                and np.allclose(np.broadcast_to(bq.scale, expected.shape), expected,
                                rtol=1e-6, atol=0)
                and np.array_equal((bq.data.astype(np.float32) * bq.scale).astype(np.float32),
                                   layer.bias)):
            data, scales = bq.data.astype(np.int32), np.broadcast_to(bq.scale, expected.shape)
        else:  # a float bias, or one the int32 values do not state at in_scale * w_scale
            data = np.rint(layer.bias.astype(np.float64) / expected.astype(np.float64))
            if np.abs(data).max(initial=0) >= 2 ** 31:
                raise self.fail(layer, "has a bias that does not fit int32")
            data, scales = data.astype(np.int32), expected
        quant = QuantParams(tuple(float(s) for s in scales), (0,) * scales.size, 0)
        return Tensor(f"{layer.name}/bias", layer.bias.shape, DType.INT32, quant, data)


def load_qdq(data: bytes, label: str, base_dir: Path | None = None) -> Graph:
    """Return the int8 IR Graph of a QDQ ONNX model given as bytes.

    Raises ModelError for malformed files and UnsupportedError for QOperator models,
    uint8 quantisation, float islands and operators outside the supported set.
    """
    graph = read_onnx(data, label, base_dir=base_dir)
    stripper = _Stripper(graph)
    model = translate(stripper.strip())
    quant = _activation_quant(model, stripper.act_quant, label)
    return assemble(model, quant, _Weights(model, stripper.const_quant, label), label)
