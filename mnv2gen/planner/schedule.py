"""Execution units: the graph cut into what the generated code runs one after another.

A `LayerUnit` runs one operator on whole tensors. A `FusedUnit` runs an inverted
residual block (or a MobileNetV1 separable pair) as one unit: the *producer* (the 1x1
expansion, or for a block without expansion the convolution before it, e.g. the stem)
computes rows of the wide tensor on demand, the depthwise consumes them, the 1x1
projection writes the thin output, and the shortcut ADD (if any) adds the thin input.
Activation ops after the producer and after the depthwise (MobileNetV3's HARD_SWISH) run
on those rows as they are computed. A squeeze-excite between the depthwise and the
projection makes the unit run in two passes (mnv2gen.planner.candidates: the depthwise
output materialised once, or recomputed); its excitation path runs on per-channel
vectors between the passes. Only the unit's input and output (and the excitation's
per-channel vectors, alive during the unit) are arena tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.blocks import (
    SqueezeExcitePath,
    activation_after,
    activation_before,
    find_blocks,
    squeeze_excite_at,
)
from mnv2gen.ir import Graph, Op, OpKind

_ROW_LOCAL = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)
# operators whose output element i depends on input element i only (and broadcast
# operands): their output may take an input's bytes when that input dies with them
_ELEMENTWISE = (OpKind.QUANTIZE, OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.HARD_SWISH,
                OpKind.LOGISTIC)


@dataclass(frozen=True)
class LayerUnit:
    """One operator on whole tensors; `alias_of` names the input its output reuses
    (RESHAPE views and same-size elementwise ops written in place), if any."""

    name: str
    op: Op
    alias_of: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """Return the activation tensors read (constants are filtered by the caller)."""
        return self.op.inputs

    @property
    def output(self) -> str:
        """Return the tensor written."""
        return self.op.outputs[0]


@dataclass(frozen=True)
class FusedUnit:
    """producer? [-> act] -> depthwise [-> act] [-> squeeze-excite] -> project [-> add]:
    reads `input`, writes `output`."""

    name: str
    producer: Op | None
    depthwise: Op
    project: Op
    add: Op | None
    input: str
    output: str
    producer_act: Op | None = None
    depthwise_act: Op | None = None
    se: SqueezeExcitePath | None = None

    @property
    def expanded(self) -> str:
        """Return the name of the wide tensor the depthwise reads (never materialised)."""
        return self.depthwise.inputs[0]

    @property
    def features(self) -> str:
        """Return the depthwise output after its activation op (what the SE or the
        projection reads)."""
        return (self.depthwise_act or self.depthwise).outputs[0]

    @property
    def plain(self) -> bool:
        """Return True without activation ops and squeeze-excite (the one-pass unit that
        depth-first segments and specialised kernels know)."""
        return self.producer_act is None and self.depthwise_act is None and self.se is None

    @property
    def inner_tensors(self) -> tuple[str, ...]:
        """Return the per-channel tensors of the squeeze-excite (arena tensors alive
        during this unit only): the MEAN output and every excitation output."""
        if self.se is None:
            return ()
        return tuple(op.outputs[0] for op in (self.se.mean, *self.se.excite))

    @property
    def ops(self) -> tuple[Op, ...]:
        """Return the fused operators in execution order."""
        se = self.se.ops if self.se else ()
        return tuple(o for o in (self.producer, self.producer_act, self.depthwise,
                                 self.depthwise_act, *se, self.project, self.add) if o)


Unit = LayerUnit | FusedUnit


def _single_reader(graph: Graph, tensor: str, op: Op) -> bool:
    return graph.consumers(tensor) == (op,) and tensor not in graph.outputs


def _alias(graph: Graph, op: Op, position: int) -> str | None:
    """Return the input whose bytes `op`'s output may reuse, or None."""
    if op.kind is OpKind.RESHAPE:
        return op.inputs[0]
    if op.kind not in _ELEMENTWISE:
        return None
    out = graph.tensor(op.outputs[0])
    for name in op.inputs:
        t = graph.tensor(name)
        if t.is_const:  # a constant operand (a broadcast ADD's) lives in flash
            continue
        later = [o for o in graph.ops[position + 1:] if name in o.inputs]
        if t.size_bytes == out.size_bytes and not later and name not in graph.outputs:
            return name
    return None


def unit_name(op: Op, what: str, taken: set[str]) -> str:
    """Return a new unit name `op<N>_<what>` numbered by `op`'s index in the model file
    (the one numbering of plans, generated C and messages), adding it to `taken`.
    Operators mnv2gen added (no index) are `added_<what>`; a second unit of one operator
    (a pass split it) gets `_2`, `_3`, ..."""
    base = f"op{op.source_index}_{what}" if op.source_index >= 0 else f"added_{what}"
    name, copy = base, 1
    while name in taken:
        copy += 1
        name = f"{base}_{copy}"
    taken.add(name)
    return name


def first_op(unit: Unit) -> Op:
    """Return the first operator a unit runs."""
    return unit.ops[0] if isinstance(unit, FusedUnit) else unit.op


def build_units(graph: Graph, fuse: bool = True) -> tuple[Unit, ...]:
    """Return the execution units in order: fused blocks where `fuse`, else single layers.

    A producer is fused only when it is a convolution whose one reader is the block's
    depthwise and that no earlier unit already claimed (a MobileNetV1 pointwise conv is
    the previous pair's projection, so the next pair reads its output as input).
    """
    fused: dict[str, FusedUnit] = {}
    claimed: set[str] = set()
    taken: set[str] = set()
    ops_by_name = {op.name: op for op in graph.ops}
    for block in find_blocks(graph) if fuse else ():
        dw = ops_by_name[block.depthwise]
        producer_act = activation_before(graph, dw.inputs[0])
        wide = producer_act.inputs[0] if producer_act else dw.inputs[0]
        producer = ops_by_name[block.expand] if block.expand else graph.producer(wide)
        if (producer is None or producer.kind not in _ROW_LOCAL or producer.name in claimed
                or not _single_reader(graph, dw.inputs[0], dw)
                or (producer_act is not None and activation_after(graph, wide) is None)):
            producer, producer_act = None, None
        first = producer or dw
        se = None
        if block.squeeze_excite:
            se = squeeze_excite_at(graph, ops_by_name[block.squeeze_excite[0]].inputs[0])
        unit = FusedUnit(
            name=unit_name(first, "block", taken), producer=producer, depthwise=dw,
            project=ops_by_name[block.project],
            add=ops_by_name[block.add] if block.add else None,
            input=producer.inputs[0] if producer else dw.inputs[0], output=block.output,
            producer_act=producer_act,
            depthwise_act=ops_by_name[block.depthwise_activation]
            if block.depthwise_activation else None, se=se)
        claimed.update(o.name for o in unit.ops)
        fused[unit.ops[0].name] = unit
    units: list[Unit] = []
    for position, op in enumerate(graph.ops):
        if op.name in fused:
            units.append(fused[op.name])
        elif op.name not in claimed:
            units.append(LayerUnit(unit_name(op, op.kind.value.lower(), taken), op,
                                   _alias(graph, op, position) if fuse else
                                   (op.inputs[0] if op.kind is OpKind.RESHAPE else None)))
    return tuple(units)
