"""The state of one ONNX -> float translation: `Value` (an ONNX activation and its layout)
and `Translator` (operands, results, folding targets), shared by the operator handlers.

The handlers (`onnx_float_ops`, `onnx_layout_ops`) import this module; `onnx_float`
drives it with their table. Nothing here knows an operator's meaning.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnv2gen.errors import IRError, ModelError, UnsupportedError, quoted
from mnv2gen.frontend.float_model import FloatModel
from mnv2gen.frontend.onnx_fold import FOLDERS, fold_node
from mnv2gen.frontend.onnx_graph import Node, OnnxGraph
from mnv2gen.ir import Activation, OpKind
from mnv2gen.zoo_float import INPUT, FloatLayer, Init

Handler = Callable[["Translator", Node], None]


@dataclass(frozen=True)
class Value:
    """An ONNX activation: the float tensor holding it and how its axes map.

    `shape` is the ONNX shape (including a pending Pad); `stored` the float tensor's
    shape (NHWC when `nchw`); `pad` a pending (top, bottom, left, right) zero padding
    that only a Conv may consume.
    """

    name: str
    shape: tuple[int, ...]
    stored: tuple[int, ...]
    nchw: bool = False
    pad: tuple[int, int, int, int] | None = None

    def channel_axis(self) -> int:
        """Return the ONNX axis holding channels (1 for NCHW, the last otherwise)."""
        return 1 if self.nchw else len(self.shape) - 1


def nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Return the NHWC shape of an NCHW shape."""
    n, c, h, w = shape
    return (n, h, w, c)


WEIGHTED = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED)


class Translator:
    """Holds the state while one OnnxGraph is translated node by node."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.g = graph
        self.consts: dict[str, np.ndarray] = dict(graph.constants)
        self.values: dict[str, Value] = {}
        self.layers: list[FloatLayer] = []
        self.aliases: dict[str, list[str]] = defaultdict(list)  # float name -> ONNX names
        self.weight_sources: dict[str, tuple[str, str]] = {}
        self.source_nodes: dict[str, int] = {}
        self.readers = Counter(n for node in graph.nodes for n in node.inputs if n)
        self.pending = Counter(self.readers)
        self._names = {INPUT}

    # -- messages ---------------------------------------------------------------------
    def fail(self, node: Node, what: str, hint: str = "") -> UnsupportedError:
        """Return an UnsupportedError '<file>: node N (Op) <what>'."""
        return UnsupportedError(f"{self.g.label}: {node.describe()} {what}", hint)

    # -- operands ---------------------------------------------------------------------
    def act(self, node: Node, i: int, allow_pad: bool = False) -> Value:
        """Return input `i` of `node` as an activation (not a constant, no pending Pad)."""
        name = node.inputs[i] if i < len(node.inputs) else ""
        if name not in self.values:
            raise self.fail(node, f"needs an activation as input {i}, got "
                            f"{'a constant' if name in self.consts else 'nothing'} "
                            f"({quoted(name)})")
        v = self.values[name]
        if v.pad is not None and not allow_pad:
            raise self.fail(node, f"reads the output of a Pad ({quoted(name)}); only a Conv may "
                            "read a Pad", "Pad is folded into the padding of the next Conv")
        return v

    def const(self, node: Node, i: int, what: str, optional: bool = False) -> np.ndarray | None:
        """Return input `i` of `node` as a constant array (None if optional and omitted)."""
        name = node.inputs[i] if i < len(node.inputs) else ""
        if not name and optional:
            return None
        if name not in self.consts:
            raise self.fail(node, f"has a non-constant {what} ({quoted(name)})",
                            "weights, shapes and padding must be initializers or constant-"
                            "foldable")
        return self.consts[name]

    # -- results ----------------------------------------------------------------------
    def define(self, node: Node, value: Value, output: int = 0) -> Value:
        """Record `value` as ONNX output `output` of `node`; return it."""
        onnx_name = node.outputs[output]
        self.values[onnx_name] = value
        self.aliases[value.name].append(onnx_name)
        return value

    def unique(self, base: str) -> str:
        """Return a float tensor name derived from `base`, unused so far."""
        name, n = base, 0
        while name in self._names:
            n += 1
            name = f"{base}#{n}"
        self._names.add(name)
        return name

    def add_layer(self, node: Node, kind: OpKind, inputs: tuple[str, ...], value_shape,
                  stored, attrs, nchw: bool = False, weights=None, bias=None) -> Value:
        """Append a FloatLayer for `node` and define its output; return the Value."""
        name = self.unique(node.outputs[0])
        layer = FloatLayer(kind, name, inputs, tuple(stored), attrs,
                           tuple(weights.shape) if weights is not None else (), Init.NONE,
                           weights, bias)
        self.layers.append(layer)
        self.source_nodes[name] = node.index
        return self.define(node, Value(name, tuple(value_shape), tuple(stored), nchw))

    def last_reader(self, v: Value) -> bool:
        """Return True when no later node and no graph output reads `v`'s float tensor."""
        names = self.aliases[v.name]
        return (all(self.pending[n] == 0 for n in names)
                and self.g.output_name not in names)

    def producer(self, v: Value) -> int | None:
        """Return the index in `layers` of the layer writing `v` (None for the input)."""
        for i in range(len(self.layers) - 1, -1, -1):
            if self.layers[i].name == v.name:
                return i
        return None

    def open_producer(self, node: Node, v: Value, kinds, what: str) -> int:
        """Return the index of `v`'s producer if `node` may rewrite it in place.

        That needs a producer of one of `kinds`, no fused activation yet and no other
        reader of its output; otherwise UnsupportedError explains what `what` needs.
        """
        index = self.producer(v)
        layer = self.layers[index] if index is not None else None
        ok = (layer is not None and layer.kind in kinds and v.pad is None
              and getattr(layer.attrs, "activation", Activation.NONE) is Activation.NONE
              and self.last_reader(v))
        if not ok:
            found = ("the model input" if layer is None
                     else f"{layer.kind.value} {quoted(layer.name)}")
            raise self.fail(node, f"{what} can only be folded into a preceding "
                            f"{'/'.join(k.value for k in kinds)} whose output nothing else "
                            f"reads and that has no activation yet; it reads {found}",
                            "fold it into the weights before exporting (e.g. onnxsim or "
                            "onnxruntime's offline optimiser)")
        return index

    def replace_layer(self, index: int, **changes) -> None:
        """Replace fields of layer `index` (weights, bias, attrs, shape)."""
        layer = replace(self.layers[index], **changes)
        if layer.weights is not None:
            layer = replace(layer, weights_shape=tuple(layer.weights.shape))
        self.layers[index] = layer

    # -- driver -----------------------------------------------------------------------
    def start(self) -> None:
        """Define the graph input, deciding its layout from its readers."""
        shape = self.g.input_shape
        readers = [n for n in self.g.nodes if self.g.input_name in n.inputs]
        nhwc_input = len(shape) == 4 and readers and all(
            n.op_type == "Transpose" and tuple(n.attrs.get("perm", ())) == (0, 3, 1, 2)
            for n in readers)
        nchw = len(shape) == 4 and not nhwc_input
        stored = nhwc(shape) if nchw else shape
        self.values[self.g.input_name] = Value(INPUT, shape, stored, nchw)
        self.aliases[INPUT].append(self.g.input_name)

    def run(self, handlers: Mapping[str, Handler], supported: str) -> None:
        """Translate every node in file order with `handlers` (op type -> handler);
        `supported` lists the operators for the hint of an unsupported one."""
        for node in self.g.nodes:
            for name in node.inputs:
                if name and name not in self.values and name not in self.consts:
                    raise ModelError(f"{self.g.label}: {node.describe()} reads {quoted(name)}, "
                                     "which no earlier node or initializer defines",
                                     "the graph is not topologically sorted or is corrupt")
                if name:
                    self.pending[name] -= 1
            args = [self.consts.get(n) if n else None for n in node.inputs]
            first = self.values.get(node.inputs[0]) if node.inputs else None
            folded = fold_node(self.g, node, args, first.shape if first else None)
            if folded is not None:
                self.consts[node.outputs[0]] = folded
                continue
            if node.op_type not in handlers:
                what = ("is not supported" if node.op_type not in FOLDERS else
                        "is supported only on constants (shape arithmetic), here it reads an "
                        "activation")
                raise self.fail(node, what, f"supported ONNX operators: {supported}")
            handlers[node.op_type](self, node)

    def finish(self) -> FloatModel:
        """Return the FloatModel: layers the output depends on, in order."""
        out = self.g.output_name
        if out not in self.values:
            raise UnsupportedError(f"{self.g.label}: the output {quoted(out)} is a constant",
                                   "the model computes nothing from its input")
        v = self.values[out]
        if v.name == INPUT:
            raise UnsupportedError(f"{self.g.label}: the output is the input",
                                   "the model has no operators to compile")
        if v.pad is not None:
            raise UnsupportedError(f"{self.g.label}: the output {quoted(out)} is a Pad's output",
                                   "only a Pad before a Conv is supported")
        needed, kept = {v.name}, []
        for layer in reversed(self.layers):
            if layer.name in needed:
                kept.append(layer)
                needed.update(layer.inputs)
        kept.reverse()
        if kept[-1].name != v.name:
            raise IRError(f"{self.g.label}: output layer {quoted(v.name)} is not last")
        names = {name: val.name for name, val in self.values.items()}
        live = {layer.name for layer in kept} | {INPUT}
        return FloatModel(
            name=Path(self.g.label).name, layers=tuple(kept),
            input_shape=self.values[self.g.input_name].stored,
            input_nchw=self.values[self.g.input_name].nchw, output=v.name,
            output_nchw=v.nchw and len(v.shape) == 4, onnx_input_shape=self.g.input_shape,
            onnx_names={k: n for k, n in names.items() if n in live},
            weight_sources={k: s for k, s in self.weight_sources.items() if k in live},
            source_nodes={k: s for k, s in self.source_nodes.items() if k in live},
            source_sha256=self.g.sha256)
