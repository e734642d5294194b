"""The one check of what `build` can generate, run by every command before it describes
a model (inspect, run, plan, estimate, build, verify), so none of them describes a model
that build would refuse.

`check_supported(core)` takes the integer core (after passes and `integer_core`) and
raises UnsupportedError naming the first operator, tensor or edge that code generation
cannot produce, with what is supported. One check function per operator kind whose
lowering has preconditions; a kind without a row in `lower.LAYER_TEMPLATES` is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnv2gen import quant_params
from mnv2gen.codegen.lower import LAYER_TEMPLATES
from mnv2gen.codegen.lower_family import broadcast_geometry, transpose_geometry
from mnv2gen.errors import UnsupportedError
from mnv2gen.ir import DType, Graph, Op, OpKind

_REQUANTIZE = {(DType.UINT8, DType.INT8), (DType.INT8, DType.INT8), (DType.INT8, DType.UINT8)}
_OUTPUT_TYPES = (DType.INT8, DType.UINT8, DType.INT32, DType.INT64)
_SHAPE_PLUMBING = (OpKind.SHAPE, OpKind.STRIDED_SLICE, OpKind.PACK, OpKind.GATHER, OpKind.TILE)


def _mean(graph: Graph, op: Op) -> tuple[str, str] | None:
    axes = op.attrs.axes
    if list(axes) != list(range(axes[0], axes[-1] + 1)):
        return (f"MEAN over non-adjacent axes {axes}",
                "code generation supports MEAN over one run of adjacent axes")
    return None


def _quantize(graph: Graph, op: Op):
    pair = (graph.tensor(op.inputs[0]).dtype, graph.tensor(op.outputs[0]).dtype)
    if pair not in _REQUANTIZE:
        return (f"QUANTIZE {pair[0].value} -> {pair[1].value} inside the model",
                "generated code requantises uint8/int8 -> int8 and int8 -> uint8; float "
                "edges are left to the caller (only at the model's input and outputs)")
    return None


def _reshape(graph: Graph, op: Op):
    if len(op.inputs) != 1:
        return ("RESHAPE to a shape computed at run time",
                "only shapes that are constant (or constant-foldable) are supported")
    return None


def _binary(graph: Graph, op: Op):
    shapes = [graph.tensor(n).shape for n in (*op.inputs, op.outputs[0])]
    if broadcast_geometry(shapes[2], shapes[0], shapes[1]) is None:
        return (f"{op.kind.value} broadcasting {shapes[0]} with {shapes[1]} needs more "
                "than 4 dimensions", "broadcasts must collapse to 4 dimensions")
    return None


def _transpose(graph: Graph, op: Op):
    if transpose_geometry(graph.tensor(op.inputs[0]).shape, op.attrs.perm) is None:
        return (f"TRANSPOSE {op.attrs.perm} of {graph.tensor(op.inputs[0]).shape} moves "
                "more than 4 groups of axes", "transposes must collapse to 4 dimensions")
    return None


def _params(compute: Callable) -> Callable:
    def check(graph: Graph, op: Op):
        try:
            compute(graph, op)
        except ValueError as exc:
            return str(exc), "TFLite Micro rejects this quantisation too"
        return None
    return check


def _rank4(graph: Graph, op: Op):
    if any(len(graph.tensor(n).shape) > 4 for n in (*op.inputs, op.outputs[0])):
        return f"{op.kind.value} of a tensor with more than 4 dimensions", \
            "code generation supports up to 4 dimensions here"
    return None


# kind -> precondition of its lowering (None: always lowerable)
CHECKS: dict[OpKind, Callable[[Graph, Op], tuple[str, str] | None]] = {
    OpKind.MEAN: _mean,
    OpKind.QUANTIZE: _quantize,
    OpKind.RESHAPE: _reshape,
    OpKind.ADD: _binary,
    OpKind.SUB: _binary,
    OpKind.MUL: _binary,
    OpKind.TRANSPOSE: _transpose,
    OpKind.PAD: _rank4,
    OpKind.MAX_POOL_2D: _rank4,
    OpKind.HARD_SWISH: _params(lambda g, op: quant_params.hard_swish_params(
        g.tensor(op.inputs[0]).scale, 0, g.tensor(op.outputs[0]).scale, 0)),
    OpKind.LOGISTIC: _params(lambda g, op: quant_params.logistic_params(
        g.tensor(op.inputs[0]).scale, 0)),
}


def _refuse(graph: Graph, what: str, hint: str) -> None:
    raise UnsupportedError(f"{graph.name}: {what} cannot be generated as C", hint)


def _refuse_op(graph: Graph, op: Op, what: str, hint: str) -> None:
    raise UnsupportedError(f"{graph.name}: {op.describe()} cannot be generated as C ({what})",
                           hint)


def check_supported(core: Graph) -> None:
    """Raise UnsupportedError unless code generation can produce every part of `core`."""
    if len(core.inputs) != 1:
        _refuse(core, f"a model with {len(core.inputs)} inputs",
                "code generation supports one input")
    x = core.tensor(core.inputs[0])
    if x.dtype not in (DType.INT8, DType.UINT8) or x.quant is None:
        _refuse(core, f"the {x.dtype.value} input", "the device input is int8 or uint8; a "
                "float input must go straight into a QUANTIZE")
    for name in core.outputs:
        t = core.tensor(name)
        if t.dtype is DType.FLOAT32 and t.is_const and np.isfinite(t.data).all():
            continue  # float arithmetic on constants only: folded, served from flash
        if t.dtype not in _OUTPUT_TYPES:
            _refuse(core, f"a {t.dtype.value} output computed at run time",
                    "float operators after the last DEQUANTIZE (e.g. box decoding) run on "
                    "the host: mnv2gen constant-folds them where their inputs are constants "
                    "and generates integer code only; end the model at the DEQUANTIZE")
    for op in core.ops:
        if op.kind in _SHAPE_PLUMBING:
            _refuse_op(core, op, "it reads data known only at run time",
                    "shape plumbing is folded at compile time when its inputs are constant "
                    "shapes; it cannot run on activations")
        if op.kind not in LAYER_TEMPLATES:
            _refuse(core, op.describe(),
                    f"code generation supports {', '.join(k.value for k in LAYER_TEMPLATES)}"
                    " (float QUANTIZE/DEQUANTIZE only at the model's edges)")
        problem = CHECKS.get(op.kind, lambda g, o: None)(core, op)
        if problem is not None:
            _refuse_op(core, op, *problem)
