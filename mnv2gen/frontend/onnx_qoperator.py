"""onnxruntime's QOperator form -> the QDQ form, so one reader (`onnx_qdq`) imports both.

A QLinear operator states its operands' and its output's quantisation as inputs; it is
rewritten as DequantizeLinear of each operand, the float operator, and QuantizeLinear of
the output: the same integers, scales and zero points, so the rewrite is exact. The float
operator writes the QOperator output's name (the IR tensor keeps the file's name), its
QuantizeLinear a derived one that every reader of the quantised tensor is pointed to.
Integer data-movement operators between QLinear ones (Squeeze, Reshape, Transpose, ...)
keep their input's quantisation: Dequantize, the operator, Quantize with the same scale.
One table row per QOperator (`RULES`); what the float translator does not support stays
refused there, naming the file's node and operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from mnv2gen.errors import UnsupportedError, quoted
from mnv2gen.frontend.onnx_graph import QOPERATORS, Node, OnnxGraph
from mnv2gen.frontend.validate_onnx import check_qoperator

_Q, _DQ = "QuantizeLinear", "DequantizeLinear"
# Operators whose int8 result is Quantize(op(Dequantize(x))) with x's own quantisation.
PASS_THROUGH = frozenset({
    "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Slice", "Split",
    "Gather", "DepthToSpace", "SpaceToDepth", "Expand", "Tile", "MaxPool", "Pad"})
SHAPE_ONLY = frozenset({"Shape", "Size"})  # read a quantised tensor, write a float constant


@dataclass(frozen=True)
class Rule:
    """How one QOperator becomes DequantizeLinear -> `float_op` -> QuantizeLinear.

    `operands`: (data, scale, zero point) input indices of the float operator's inputs, in
    its order (None: triples after the output's scale and zero point, as QLinearConcat);
    `weight_axis(attrs)` the quantised axis of operand 1 when it is per channel;
    `bias`: the input index of an int32 bias at operand 0's scale * operand 1's scale;
    `output`: (scale, zero point) input indices of the output, None for a float output;
    `attrs(attrs, opset)`: the float operator's attributes; `channels_last` rules wrap the
    float operator in NHWC <-> NCHW Transposes when the node's attribute says so.
    """

    float_op: str
    operands: tuple[tuple[int, int, int], ...] | None
    output: tuple[int, int] | None
    bias: int | None = None
    weight_axis: Callable[[Mapping], int] = lambda attrs: 0
    attrs: Callable[[dict, int], dict] = lambda attrs, opset: attrs
    channels_last: bool = False


def _without(*names: str) -> Callable[[dict, int], dict]:
    return lambda attrs, opset: {k: v for k, v in attrs.items() if k not in names}


_X, _AB = ((0, 1, 2),), ((0, 1, 2), (3, 4, 5))
RULES: dict[str, Rule] = {
    "QLinearConv": Rule("Conv", _AB, (6, 7), bias=8),
    "QLinearMatMul": Rule("MatMul", _AB, (6, 7), weight_axis=lambda attrs: -1),
    "QGemm": Rule("Gemm", _AB, (7, 8), bias=6,
                  weight_axis=lambda attrs: 0 if attrs.get("transB", 0) else 1),
    "QLinearAdd": Rule("Add", _AB, (6, 7)),
    "QLinearMul": Rule("Mul", _AB, (6, 7)),
    "QLinearGlobalAveragePool": Rule("GlobalAveragePool", _X, (3, 4),
                                     attrs=_without("channels_last"), channels_last=True),
    "QLinearAveragePool": Rule("AveragePool", _X, (3, 4), attrs=_without("channels_last"),
                               channels_last=True),
    "QLinearSoftmax": Rule("Softmax", _X, (3, 4), attrs=_without("opset")),
    "QLinearSigmoid": Rule("Sigmoid", _X, (3, 4)),
    "QLinearLeakyRelu": Rule("LeakyRelu", _X, (3, 4)),
    "QLinearReduceMean": Rule("ReduceMean", _X, (3, 4)),  # axes: an input from opset 18
    "QLinearConcat": Rule("Concat", None, (0, 1)),
}


def has_qoperators(graph: OnnxGraph) -> bool:
    """Return True when the graph holds any QOperator-form node."""
    return any(n.op_type in QOPERATORS for n in graph.nodes)


class _Rewriter:
    """Rewrites an OnnxGraph node by node; quantised tensors keep their file names."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.g = graph
        self.consts = dict(graph.constants)
        self.nodes: list[Node] = []
        self.taken = ({graph.input_name, graph.output_name} | set(graph.constants)
                      | {n for node in graph.nodes for n in (*node.inputs, *node.outputs)})
        # quantised tensor of the file -> (its QuantizeLinear output here, scale, zero point)
        self.quantised: dict[str, tuple[str, str, str]] = {}

    def fail(self, node: Node, what: str, hint: str = "") -> UnsupportedError:
        return UnsupportedError(f"{self.g.label}: {node.describe()} {what}", hint)

    def fresh(self, base: str) -> str:
        """Return an unused tensor name derived from `base`."""
        name, n = base, 0
        while name in self.taken:
            n += 1
            name = f"{base}#{n}"
        self.taken.add(name)
        return name

    def constant(self, base: str, value: np.ndarray) -> str:
        """Add an initializer; return its name."""
        name = self.fresh(base)
        array = np.array(value)
        array.flags.writeable = False
        self.consts[name] = array
        return name

    def emit(self, source: Node, op_type: str, inputs, outputs, attrs: Mapping | None = None):
        self.nodes.append(Node(source.index, op_type, "", tuple(inputs), tuple(outputs),
                               MappingProxyType(dict(attrs or {})), source.op_type))

    def dequantize(self, source: Node, data: str, scale: str, zero: str, axis: int = 1) -> str:
        """Return the float name of operand `data` (an activation or an initializer)."""
        if data in self.quantised:
            q = self.quantised[data][0]
        elif data in self.consts:
            q = data
        else:
            raise self.fail(source, f"reads {quoted(data)} as a quantised operand, but it is "
                            "neither a quantised tensor nor an initializer")
        out = self.fresh(f"{data}/dequantized")
        self.emit(source, _DQ, (q, scale, zero), (out,), {"axis": axis})
        return out

    def quantize(self, source: Node, name: str, scale: str, zero: str) -> None:
        """Quantise the float tensor `name` (written by the rewrite) for its readers."""
        q = self.fresh(f"{name}/quantized")
        self.emit(source, _Q, (name, scale, zero), (q,))
        self.quantised[name] = (q, scale, zero)

    # -- node kinds -------------------------------------------------------------------
    def qoperator(self, node: Node) -> None:
        rule = RULES.get(node.op_type)
        if rule is None:
            raise self.fail(node, "is not supported",
                            f"supported QOperator nodes: {', '.join(sorted(RULES))}")
        arg = lambda i: node.inputs[i] if i < len(node.inputs) else ""  # noqa: E731
        attrs = dict(node.attrs)
        floats = []
        operands = rule.operands or tuple((i, i + 1, i + 2)
                                          for i in range(2, len(node.inputs), 3))
        check_qoperator(self.g.label, node, self.consts, operands, rule.output, rule.bias)
        for k, (d, s, z) in enumerate(operands):
            axis = rule.weight_axis(attrs) if k == 1 and arg(s) and np.size(
                self.consts.get(arg(s), 0)) > 1 else 1
            floats.append(self.dequantize(node, arg(d), arg(s), arg(z), axis))
        if rule.bias is not None and arg(rule.bias):
            floats.append(self._bias(node, rule, arg))
        out = node.outputs[0]
        float_attrs = rule.attrs(dict(attrs), self.g.opset)
        if node.op_type == "QLinearReduceMean" and self.g.opset >= 18 and "axes" in float_attrs:
            floats.append(self.constant(f"{out}/axes",
                                        np.asarray(float_attrs.pop("axes"), np.int64)))
        nhwc = rule.channels_last and attrs.get("channels_last", 0)
        if nhwc:
            moved = self.fresh(f"{out}/nchw")
            self.emit(node, "Transpose", floats[:1], (moved,), {"perm": (0, 3, 1, 2)})
            floats[0] = moved
        result = self.fresh(f"{out}/pooled") if nhwc else out
        self.emit(node, rule.float_op, floats, (result,), float_attrs)
        if nhwc:
            self.emit(node, "Transpose", (result,), (out,), {"perm": (0, 2, 3, 1)})
        if rule.output is not None and arg(rule.output[0]):
            self.quantize(node, out, arg(rule.output[0]), arg(rule.output[1]))

    def _bias(self, node: Node, rule: Rule, arg) -> str:
        """Return the float name of an int32 bias at input scale * weight scale."""
        (_, xs, _), (_, ws, _) = rule.operands[:2]
        b = arg(rule.bias)
        if b not in self.consts or arg(xs) not in self.consts or arg(ws) not in self.consts:
            raise self.fail(node, "has a non-constant bias or scale")
        alpha = float(node.attrs.get("alpha", 1.0))
        scale = (np.float32(alpha) * np.asarray(self.consts[arg(xs)], np.float32).reshape(-1)
                 * np.asarray(self.consts[arg(ws)], np.float32).reshape(-1)).astype(np.float32)
        bias = self.consts[b]
        if bias.dtype != np.int32:
            raise self.fail(node, f"has a {bias.dtype} bias", "QOperator biases are int32")
        scale_name = self.constant(f"{b}/scale", scale if scale.size > 1 else scale[0])
        zero_name = self.constant(f"{b}/zero_point", np.zeros(scale.shape, np.int32)
                                  if scale.size > 1 else np.int32(0))
        out = self.fresh(f"{b}/dequantized")
        self.emit(node, _DQ, (b, scale_name, zero_name), (out,), {"axis": 0})
        return out

    def integer_op(self, node: Node) -> None:
        """An operator on a quantised tensor: pass it through or refuse it."""
        data = node.inputs[0] if node.inputs else ""
        if node.op_type in SHAPE_ONLY and data in self.quantised:
            _, s, z = self.quantised[data]
            self.emit(node, node.op_type, (self.dequantize(node, data, s, z), *node.inputs[1:]),
                      node.outputs, node.attrs)
            return
        others = [n for n in node.inputs[1:] if n in self.quantised]
        if node.op_type not in PASS_THROUGH or data not in self.quantised or others:
            raise self.fail(node, "reads a quantised tensor but is not a QLinear operator "
                            "mnv2gen can rewrite", "integer operators supported between "
                            f"QLinear ones: {', '.join(sorted(PASS_THROUGH | SHAPE_ONLY))}")
        _, s, z = self.quantised[data]
        inputs = [self.dequantize(node, data, s, z), *node.inputs[1:]]
        if node.op_type == "Pad" and len(inputs) > 2 and inputs[2]:
            inputs[2] = self._pad_value(node, inputs[2], s, z)
        self.emit(node, node.op_type, inputs, node.outputs, node.attrs)
        for out in node.outputs:
            if out:
                self.quantize(node, out, s, z)

    def _pad_value(self, node: Node, value: str, scale: str, zero: str) -> str:
        """Return a float constant_value for a Pad of a quantised tensor."""
        if not all(n in self.consts and np.size(self.consts[n]) == 1
                   and self.consts[n].dtype.kind in "iuf" for n in (value, scale, zero)):
            raise self.fail(node, "pads with a value, scale or zero point that is not one "
                            "constant number")
        real = (np.float32(self.consts[scale].reshape(-1)[0])
                * (self.consts[value].astype(np.float32) - self.consts[zero].astype(np.float32)))
        return self.constant(f"{value}/dequantized", real.astype(np.float32).reshape(-1)[0])

    def run(self) -> OnnxGraph:
        """Return the rewritten graph."""
        for node in self.g.nodes:
            if node.op_type in QOPERATORS:
                self.qoperator(node)
            elif node.op_type == _Q:
                self.nodes.append(node)
                scale, zero = (*node.inputs[1:3], "")[:2]
                self.quantised[node.outputs[0]] = (node.outputs[0], scale, zero)
            elif node.op_type == _DQ and node.inputs[0] in self.quantised:
                q = self.quantised[node.inputs[0]][0]
                self.nodes.append(Node(node.index, _DQ, node.domain, (q, *node.inputs[1:]),
                                       node.outputs, node.attrs, node.origin))
            elif any(n in self.quantised for n in node.inputs):
                self.integer_op(node)
            else:
                self.nodes.append(node)
        output = self.g.output_name
        output = self.quantised[output][0] if output in self.quantised else output
        return self.g.replace(nodes=tuple(self.nodes), constants=self.consts,
                              output_name=output)


def to_qdq(graph: OnnxGraph) -> tuple[OnnxGraph, dict[str, str]]:
    """Return (`graph` with every QOperator-form node rewritten as DequantizeLinear -> float
    operator -> QuantizeLinear, {the file's quantised tensor: its QuantizeLinear output in
    the new graph}); raises UnsupportedError for QOperators without a rule."""
    rewriter = _Rewriter(graph)
    result = rewriter.run()
    return result, {name: q for name, (q, _, _) in rewriter.quantised.items()}
