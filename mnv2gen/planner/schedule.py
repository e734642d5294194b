"""Execution units: the graph cut into what the generated code runs one after another.

A `LayerUnit` runs one operator on whole tensors. A `FusedUnit` runs an inverted
residual block (or a MobileNetV1 separable pair) as one unit: the *producer* (the 1x1
expansion, or for a block without expansion the convolution before it, e.g. the stem)
computes rows of the wide tensor on demand, the depthwise consumes them, the 1x1
projection writes the thin output, and the shortcut ADD (if any) adds the thin input.
Only the unit's input and output are arena tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.blocks import find_blocks
from mnv2gen.ir import Graph, Op, OpKind

_ROW_LOCAL = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)


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
    """producer? -> depthwise -> project [-> add]: reads `input`, writes `output`."""

    name: str
    producer: Op | None
    depthwise: Op
    project: Op
    add: Op | None
    input: str
    output: str

    @property
    def expanded(self) -> str:
        """Return the name of the wide tensor the depthwise reads (never materialised)."""
        return self.depthwise.inputs[0]

    @property
    def ops(self) -> tuple[Op, ...]:
        """Return the fused operators in execution order."""
        return tuple(o for o in (self.producer, self.depthwise, self.project, self.add) if o)


Unit = LayerUnit | FusedUnit


def _single_reader(graph: Graph, tensor: str, op: Op) -> bool:
    return graph.consumers(tensor) == (op,) and tensor not in graph.outputs


def _alias(graph: Graph, op: Op, position: int) -> str | None:
    """Return the input whose bytes `op`'s output may reuse, or None."""
    if op.kind is OpKind.RESHAPE:
        return op.inputs[0]
    if op.kind not in (OpKind.QUANTIZE, OpKind.ADD):
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
        producer = ops_by_name[block.expand] if block.expand else graph.producer(dw.inputs[0])
        if (producer is None or producer.kind not in _ROW_LOCAL or producer.name in claimed
                or not _single_reader(graph, dw.inputs[0], dw)):
            producer = None
        first = producer or dw
        unit = FusedUnit(
            name=unit_name(first, "block", taken), producer=producer, depthwise=dw,
            project=ops_by_name[block.project],
            add=ops_by_name[block.add] if block.add else None,
            input=producer.inputs[0] if producer else dw.inputs[0], output=block.output)
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
