"""The front door: every field later stages trust, checked once on the IR before the passes.

Every front end (TFLite, ONNX QDQ, float ONNX after PTQ) ends with `validate_graph`; the
readers call `check_shape`, `check_window` and `check_operands` on raw values before they
compute with them. An error names the file, the operator (by its index in the file) or
tensor, the field and its value, and says what is supported.

Limits (`LIMITS`, documented in the README) come from what the generated code stores:
band rows and channel-group bounds are `int16_t` (templates/runtime/mnv2_fused.h), so no
dimension exceeds 32767; arena offsets, dims and parameters are `int32_t`, so no tensor,
and no sum of all activations (the layer-by-layer arena), exceeds 2**31 - 1 bytes; int32
accumulators must not overflow for any input; requantisation left shifts stay <= 30 (a
shift of 31 or more is undefined in C and in TFLite). Scales lie in [2**-126, 2**100]:
normal float32 values whose products with any int8 range stay finite.

Per-operator checks are one row per `OpKind` in `RULES` (operands, attributes,
arithmetic). An operator kind without a row gets the generic tensor checks only;
tests/test_validate.py fails until every kind has its row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from mnv2gen.errors import IRError, ModelError, quoted
from mnv2gen.frontend.validate_rules import (
    HINT_LIMITS,
    LIMITS,
    RULES,
    Context,
    Limits,
    Operand,
    OpRule,
    fail,
    window,
)
from mnv2gen.ir import DType, Graph, Op, Tensor
from mnv2gen.shapes import SHAPE_RULES

_fail = fail
_ZERO_POINT_RANGE = {DType.INT8: (-128, 127), DType.UINT8: (0, 255)}


# ---------------------------------------------------------------- raw values (readers)

def check_shape(label: str, where: str, shape: Sequence, limits: Limits = LIMITS) -> None:
    """Raise ModelError unless `shape` is a tuple of ints in [1, max_dim], of rank <=
    max_rank and at most max_tensor_bytes elements."""
    if len(shape) > limits.max_rank:
        raise _fail(label, where, f"rank {len(shape)} exceeds {limits.max_rank}")
    for axis, d in enumerate(shape):
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise _fail(label, where, f"dimension {axis} is {d!r}, not an integer")
        if not 1 <= d <= limits.max_dim:
            raise _fail(label, where, f"dimension {axis} is {int(d):,}; dimensions must be "
                        f"1 to {limits.max_dim:,}")
    elements = math.prod(int(d) for d in shape)
    if elements > limits.max_tensor_bytes:
        raise _fail(label, where, f"shape {tuple(int(d) for d in shape)} has {elements:,} "
                    f"elements; at most {limits.max_tensor_bytes:,} are supported")


def check_window(label: str, where: str, strides: Iterable = (1, 1),
                 dilations: Iterable = (1, 1), kernel: Iterable = (1, 1),
                 limits: Limits = LIMITS) -> None:
    """Raise ModelError unless every stride, dilation and kernel size is an int in
    [1, max_dim] (readers call this before they compute padding or output sizes)."""
    window(label, where, strides, dilations, kernel, limits)


def check_operands(label: str, op: Op, tensors: Sequence[Tensor | None],
                   output: Tensor | None = None) -> None:
    """Raise ModelError/UnsupportedError when `tensors` (the IR inputs of `op` in order,
    None for an omitted optional one) do not have the ranks, types and constness its
    rule requires; readers call this before they parse attributes."""
    rule = RULES.get(op.kind)
    present = [t for t in (*tensors, output) if t is not None]
    if rule is None or _float_tail(rule, present):
        return
    for position, t in enumerate(tensors):
        if t is not None:
            _check_operand(label, op, f"input {position}", t, rule.operand(position))


def _float_tail(rule: OpRule, tensors: Sequence[Tensor]) -> bool:
    """Return True when the op may, and does, compute in float32 (all operands float32)."""
    return rule.float_tail and all(t.dtype is DType.FLOAT32 for t in tensors)


def _check_operand(label: str, op: Op, role: str, t: Tensor, operand: Operand) -> None:
    where = f"{op.describe()} {role} ({quoted(t.name)})"
    if operand.ranks and len(t.shape) not in operand.ranks:
        raise _fail(label, where, f"has rank {len(t.shape)} (shape {t.shape}); "
                    f"{op.kind.value} needs rank {' or '.join(map(str, operand.ranks))}",
                    "the file is corrupt or the operator is used in an unsupported way")
    if operand.dtypes and t.dtype not in operand.dtypes:
        raise _fail(label, where, f"is {t.dtype.value}; {op.kind.value} needs "
                    f"{' or '.join(d.value for d in operand.dtypes)}",
                    "mnv2gen needs a fully int8-quantised model (int8 activations and "
                    "weights, int32 bias)", unsupported=True)
    if operand.const is not None and t.is_const != operand.const:
        raise _fail(label, where, "must be a constant" if operand.const else
                    "must not be a constant", "weights and biases must be constants; "
                    "dynamic weights are not supported", unsupported=True)
    if operand.quantized and t.quant is None:
        raise _fail(label, where, f"has no quantisation; {op.kind.value} needs quantised "
                    "int8 tensors", "quantise the model (full-integer int8)", unsupported=True)
    if operand.per_tensor and t.quant is not None and t.quant.per_channel:
        raise _fail(label, where, f"has {len(t.quant.scale)} scales; activations must be "
                    "quantised per tensor", unsupported=True)
    if operand.symmetric and t.quant is not None and any(t.quant.zero_point):
        raise _fail(label, where, f"has zero point {t.quant.zero_point[0]}; weights must be "
                    "symmetric (zero point 0)", "re-quantise with symmetric int8 weights",
                    unsupported=True)


def check_quant(label: str, where: str, t: Tensor, limits: Limits = LIMITS) -> None:
    """Raise ModelError unless the tensor's scales are finite floats in [min_scale,
    max_scale], its zero points in its type's range and its per-channel axis valid."""
    q = t.quant
    if q is None:
        return
    if not q.scale or len(q.zero_point) not in (1, len(q.scale)):
        raise _fail(label, where, f"has {len(q.scale)} scales and {len(q.zero_point)} zero "
                    "points", "the file is corrupt")
    for i, s in enumerate(q.scale):
        if not (math.isfinite(s) and limits.min_scale <= s <= limits.max_scale):
            at = f" {i}" if q.per_channel else ""
            raise _fail(label, where, f"scale{at} is {s!r}; scales must be finite and from "
                        f"{limits.min_scale:.3g} to {limits.max_scale:.3g}",
                        "a scale of 0, a negative, NaN or infinite scale has no meaning")
    # int8/uint8 zero points enter the arithmetic; others are only bounded to int32
    lo, hi = _ZERO_POINT_RANGE.get(t.dtype, (-(1 << 31), (1 << 31) - 1))
    for z in q.zero_point:
        if not lo <= z <= hi:
            raise _fail(label, where, f"zero point {z} is outside the {t.dtype.value} "
                        f"range [{lo}, {hi}]", "the file is corrupt")
    # converters write stale axes on 1-D biases; the count is what the kernels rely on
    axis_ok = 0 <= q.axis < len(t.shape) and t.shape[q.axis] == len(q.scale)
    if q.per_channel and not (axis_ok or t.shape == (len(q.scale),)):
        raise _fail(label, where, f"has {len(q.scale)} per-channel scales along axis "
                    f"{q.axis} of shape {t.shape}", "the file is corrupt")


# ---------------------------------------------------------------- the graph (front door)

def validate_graph(graph: Graph, label: str, limits: Limits = LIMITS) -> Graph:
    """Return `graph` after checking everything later stages rely on, raising ModelError
    or UnsupportedError (one line naming `label`, the operator or tensor, the field and
    value, plus a hint) on the first violation.

    Order: graph size and I/O, every tensor (shape, bytes, quantisation, data), totals,
    every operator's operands and attributes (its RULES row), then the shapes and
    execution order (`Graph.verify`), then each operator's arithmetic (requantisation
    multipliers, int32 accumulators, activation ranges).
    """
    if not graph.ops:
        raise _fail(label, "the graph", "has no operators", "the model computes nothing")
    if len(graph.ops) > limits.max_ops:
        raise _fail(label, "the graph", f"has {len(graph.ops):,} operators; at most "
                    f"{limits.max_ops:,} are supported")
    for role, names in (("input", graph.inputs), ("output", graph.outputs)):
        if not names:
            raise _fail(label, "the graph", f"has no {role}", "the file is corrupt")
        for name in names:
            if name not in graph.tensors:
                raise _fail(label, f"graph {role} {quoted(name)}", "is not a tensor of the "
                            "model", "the file is corrupt")
    written = {n for op in graph.ops for n in op.outputs}
    for name in graph.outputs:
        if name not in written:
            raise _fail(label, f"graph output {quoted(name)}", "is not computed by any "
                        "operator (a constant or a graph input)", "the file is corrupt")
    activation_bytes = const_bytes = 0
    for t in graph.tensors.values():
        where = f"tensor {quoted(t.name)}"
        check_shape(label, where, t.shape, limits)
        check_quant(label, where, t, limits)
        if t.is_const:
            if t.data.shape != t.shape or t.data.dtype != t.dtype.np:
                raise _fail(label, where, f"holds {t.data.dtype}{list(t.data.shape)} data for "
                            f"shape {t.shape} {t.dtype.value}", "the file is corrupt")
            if t.dtype is DType.FLOAT32 and not np.isfinite(t.data).all():
                raise _fail(label, where, "holds NaN or infinite float32 values",
                            "the file is corrupt")
            const_bytes += t.size_bytes
        else:
            activation_bytes += t.size_bytes
    for what, total, limit in (("activations", activation_bytes, limits.max_activation_bytes),
                               ("constants", const_bytes, limits.max_const_bytes)):
        if total > limit:
            raise _fail(label, "the graph", f"its {what} take {total:,} bytes; at most "
                        f"{limit:,} are supported", HINT_LIMITS)
    ctx = Context(graph, label, limits)
    for op in graph.ops:
        _check_op_structure(ctx, op, RULES.get(op.kind))
    try:
        graph.verify()
    except IRError as exc:
        raise ModelError(f"{label}: inconsistent model: {exc.message}",
                         "the file is corrupt (shapes or operator order disagree)") from None
    for op in graph.ops:
        rule = RULES.get(op.kind)
        if rule is not None and rule.arithmetic is not None and not _float_tail(
                rule, [graph.tensor(n) for n in (*op.inputs, op.outputs[0])]):
            _arithmetic(ctx, op, rule.arithmetic)
    return graph


def reference_work(graph: Graph) -> tuple[int, int]:
    """Return (multiply-accumulates, largest per-operator working bytes) of one run of the
    NumPy reference: a convolution's im2col matrix is float64 (8 bytes x output pixels x
    kernel taps x input channels), other operators hold a few int64 copies of their
    tensors."""
    from mnv2gen.ir import OpKind
    from mnv2gen.stats import graph_macs

    largest = 0
    for op in graph.ops:
        out = graph.tensor(op.outputs[0])
        if op.kind is OpKind.CONV_2D:
            _, kh, kw, in_c = graph.tensor(op.inputs[1]).shape
            work = 8 * (out.num_elements // out.shape[-1]) * kh * kw * in_c
        else:
            work = 0
        elements = max([out.num_elements, *(graph.tensor(n).num_elements for n in op.inputs)])
        largest = max(largest, work + 24 * elements)
    return graph_macs(graph), largest


def check_reference_work(graph: Graph, label: str, limits: Limits = LIMITS) -> None:
    """Raise ModelError when one run of the NumPy reference (`run`, `verify`) would exceed
    max_reference_macs or max_reference_bytes for an operator, with the numbers."""
    macs, work = reference_work(graph)
    if macs > limits.max_reference_macs:
        raise _fail(label, "the model", f"needs {macs:,} multiply-accumulates per inference; "
                    f"the NumPy reference runs at most {limits.max_reference_macs:,}",
                    f"{HINT_LIMITS}; `plan` and `build` have no such limit")
    if work > limits.max_reference_bytes:
        raise _fail(label, "the model", f"needs {work:,} bytes of working memory for one "
                    f"operator of the NumPy reference; at most "
                    f"{limits.max_reference_bytes:,} are used",
                    f"{HINT_LIMITS}; `plan` and `build` have no such limit")


def _check_op_structure(ctx: Context, op: Op, rule: OpRule | None) -> None:
    label = ctx.label
    names = (*op.inputs, *op.outputs)
    for name in names:
        if name not in ctx.graph.tensors:
            raise _fail(label, op.describe(), f"uses {quoted(name)}, which is not a tensor "
                        "of the model", "the file is corrupt")
    if rule is None:
        return
    counts = SHAPE_RULES[op.kind][0]
    if len(op.inputs) not in counts or len(op.outputs) != 1:
        expected = f"{counts.start}" if len(counts) == 1 else f"{counts.start} or more"
        raise _fail(label, op.describe(), f"has {len(op.inputs)} inputs and "
                    f"{len(op.outputs)} outputs; expected {expected} and 1",
                    "the file is corrupt")
    if not isinstance(op.attrs, rule.attrs):
        raise _fail(label, op.describe(), f"has {type(op.attrs).__name__} options",
                    "the file is corrupt")
    tensors = [ctx.graph.tensor(n) for n in (*op.inputs, op.outputs[0])]
    if not _float_tail(rule, tensors):
        for position, t in enumerate(tensors[:-1]):
            _check_operand(label, op, f"input {position}", t, rule.operand(position))
        _check_operand(label, op, "output", tensors[-1], rule.output)
    if rule.same_type:
        x, y = (ctx.graph.tensor(n) for n in (op.inputs[0], op.outputs[0]))
        if x.dtype is not y.dtype or (x.quant is not None and not _same_quant(x, y)):
            raise _fail(label, op.describe(), f"changes {x.dtype.value} "
                        f"{_quant_text(x)} into {y.dtype.value} {_quant_text(y)}; "
                        f"{op.kind.value} moves data and must keep type and quantisation",
                        "the file is corrupt", unsupported=True)
    if rule.attributes is not None:
        rule.attributes(ctx, op)


def _same_quant(a: Tensor, b: Tensor) -> bool:
    return b.quant is not None and (np.float32(a.quant.scale[0]) == np.float32(b.quant.scale[0])
                                    and a.quant.zero_point[0] == b.quant.zero_point[0])


def _quant_text(t: Tensor) -> str:
    if t.quant is None:
        return "(unquantised)"
    return f"(scale {t.quant.scale[0]:.6g}, zero point {t.quant.zero_point[0]})"


def _arithmetic(ctx: Context, op: Op, check: Callable[[Context, Op], None]) -> None:
    """Run a rule's arithmetic check; the quant functions' ValueErrors become ModelErrors."""
    try:
        check(ctx, op)
    except ValueError as exc:
        raise _fail(ctx.label, op.describe(), f"its quantisation cannot be computed ({exc})",
                    "the scales of its input, weights and output are inconsistent") from None


__all__ = ["HINT_LIMITS", "LIMITS", "Limits", "check_operands", "check_quant",
           "check_reference_work", "check_shape", "check_window", "reference_work",
           "validate_graph"]
