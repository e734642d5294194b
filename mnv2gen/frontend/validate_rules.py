"""One row per operator kind: what `mnv2gen.frontend.validate` checks of its operands,
attributes and arithmetic (see that module for the limits and why they are what they are).

Adding an operator kind = one row in RULES: its operands (rank, type, constness,
quantisation), whether it only moves data (same type and quantisation in and out), an
attribute check and an arithmetic check from `validate_checks` (or None), the operand
extra inputs must be, and whether it may compute in float32 after the last DEQUANTIZE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mnv2gen.frontend.validate_checks import (  # noqa: F401 (validate imports some)
    HINT_LIMITS,
    LIMITS,
    Context,
    Limits,
    add_arithmetic,
    axis_attribute,
    concat_arithmetic,
    conv_attributes,
    fail,
    hard_swish_arithmetic,
    logistic_arithmetic,
    mean_arithmetic,
    mean_attributes,
    mul_arithmetic,
    pad_attributes,
    pool_arithmetic,
    pool_attributes,
    quantize_arithmetic,
    resize_attributes,
    softmax_arithmetic,
    softmax_attributes,
    strided_slice_attributes,
    sub_arithmetic,
    transpose_attributes,
    weighted_arithmetic,
    window,
)
from mnv2gen.ir import (
    AddAttrs,
    AxisAttrs,
    ConcatAttrs,
    ConvAttrs,
    DType,
    FullyConnectedAttrs,
    GatherAttrs,
    MeanAttrs,
    NoAttrs,
    Op,
    OpKind,
    PadAttrs,
    PoolAttrs,
    ResizeAttrs,
    SoftmaxAttrs,
    StridedSliceAttrs,
    TransposeAttrs,
)


@dataclass(frozen=True)
class Operand:
    """What one operand must be: ranks (empty: any), dtypes (empty: any), constant or not
    (None: either), quantised, per-tensor quantised, symmetric (zero points 0)."""

    ranks: tuple[int, ...] = ()
    dtypes: tuple[DType, ...] = ()
    const: bool | None = None
    quantized: bool = False
    per_tensor: bool = False
    symmetric: bool = False


@dataclass(frozen=True)
class OpRule:
    """The checks of one operator kind (see the module docstring). `extra` is what inputs
    after `inputs` must be (how many an operator has is shapes.SHAPE_RULES' business);
    `float_tail`: the kind may also compute in float32 after the model's last DEQUANTIZE,
    when every operand is float32 (then only the generic checks apply)."""

    inputs: tuple[Operand, ...]
    output: Operand
    attrs: type | tuple[type, ...] = NoAttrs
    same_type: bool = False
    attributes: Callable[[Context, Op], None] | None = None
    arithmetic: Callable[[Context, Op], None] | None = None
    extra: Operand | None = None
    float_tail: bool = False

    def operand(self, position: int) -> Operand:
        """Return the Operand input `position` must be."""
        if position < len(self.inputs):
            return self.inputs[position]
        return self.extra or Operand()



_INT8 = (DType.INT8,)
ACT = Operand(dtypes=_INT8, quantized=True, per_tensor=True)
ACT4 = Operand(ranks=(4,), dtypes=_INT8, quantized=True, per_tensor=True)
WEIGHTS4 = Operand(ranks=(4,), dtypes=_INT8, const=True, quantized=True, symmetric=True)
WEIGHTS2 = Operand(ranks=(2,), dtypes=_INT8, const=True, quantized=True, symmetric=True)
BIAS = Operand(ranks=(1,), dtypes=(DType.INT32,), const=True)
DATA = Operand()
INTEGER = (DType.INT8, DType.UINT8, DType.INT16)
INDICES = (DType.INT32, DType.INT64)
ANY = Operand()

# IR kind -> its checks (one row per kind; tests/test_validate.py wants every kind here)
RULES: dict[OpKind, OpRule] = {
    OpKind.CONV_2D: OpRule((ACT4, WEIGHTS4, BIAS), ACT4, ConvAttrs, False,
                           conv_attributes, weighted_arithmetic),
    OpKind.DEPTHWISE_CONV_2D: OpRule((ACT4, WEIGHTS4, BIAS), ACT4, ConvAttrs, False,
                                     conv_attributes, weighted_arithmetic),
    OpKind.FULLY_CONNECTED: OpRule((ACT, WEIGHTS2, BIAS), Operand(ranks=(2,), dtypes=_INT8,
                                                                   quantized=True,
                                                                   per_tensor=True),
                                   FullyConnectedAttrs, False, None, weighted_arithmetic),
    OpKind.ADD: OpRule((ACT, ACT), ACT, AddAttrs, False, None, add_arithmetic,
                       float_tail=True),
    OpKind.SUB: OpRule((ACT, ACT), ACT, AddAttrs, False, None, sub_arithmetic,
                       float_tail=True),
    OpKind.MUL: OpRule((ACT, ACT), ACT, AddAttrs, False, None, mul_arithmetic,
                       float_tail=True),
    OpKind.AVERAGE_POOL_2D: OpRule((ACT4,), ACT4, PoolAttrs, False, pool_attributes,
                                   pool_arithmetic),
    OpKind.MAX_POOL_2D: OpRule((ACT4,), ACT4, PoolAttrs, False, pool_attributes,
                               pool_arithmetic),
    OpKind.MEAN: OpRule((ACT,), ACT, MeanAttrs, False, mean_attributes, mean_arithmetic),
    OpKind.SOFTMAX: OpRule((ACT,), ACT, SoftmaxAttrs, False, softmax_attributes,
                           softmax_arithmetic),
    OpKind.HARD_SWISH: OpRule((ACT,), ACT, NoAttrs, False, None, hard_swish_arithmetic),
    OpKind.LOGISTIC: OpRule((ACT,), ACT, NoAttrs, False, None, logistic_arithmetic),
    OpKind.RESIZE_BILINEAR: OpRule((ACT4,), ACT4, ResizeAttrs, False, resize_attributes),
    OpKind.RESIZE_NEAREST_NEIGHBOR: OpRule((ACT4,), ACT4, ResizeAttrs, False,
                                           resize_attributes),
    OpKind.CONCATENATION: OpRule((ACT,), ACT, ConcatAttrs, False, axis_attribute(),
                                 concat_arithmetic, extra=ACT, float_tail=True),
    OpKind.ARG_MAX: OpRule((ACT,), Operand(dtypes=INDICES), AxisAttrs, False,
                           axis_attribute()),
    OpKind.RESHAPE: OpRule((DATA,), DATA, NoAttrs, True, extra=Operand(dtypes=INDICES)),
    OpKind.PAD: OpRule((DATA,), DATA, PadAttrs, True, pad_attributes),
    OpKind.TRANSPOSE: OpRule((DATA,), DATA, TransposeAttrs, True, transpose_attributes),
    OpKind.QUANTIZE: OpRule((Operand(dtypes=(DType.FLOAT32, *INTEGER)),),
                            Operand(dtypes=INTEGER, quantized=True, per_tensor=True),
                            NoAttrs, False, None, quantize_arithmetic),
    OpKind.DEQUANTIZE: OpRule((Operand(dtypes=INTEGER, quantized=True, per_tensor=True),),
                              Operand(dtypes=(DType.FLOAT32,)), NoAttrs),
    # shape plumbing (constant-folded by passes.fold_constants before anything runs)
    OpKind.SHAPE: OpRule((ANY,), Operand(dtypes=INDICES), NoAttrs),
    OpKind.STRIDED_SLICE: OpRule((ANY,), ANY, StridedSliceAttrs, False,
                                 strided_slice_attributes),
    OpKind.PACK: OpRule((ANY,), ANY, AxisAttrs, False, axis_attribute(1), extra=ANY),
    OpKind.GATHER: OpRule((ANY, Operand(dtypes=INDICES)), ANY, GatherAttrs, False,
                          axis_attribute()),
    OpKind.TILE: OpRule((ANY, Operand(dtypes=INDICES)), ANY, NoAttrs),
}
