"""The front door's per-operator checks: the limits, the context a check sees, and one
attribute and/or arithmetic check per operator kind (mnv2gen.frontend.validate_rules
says which kind runs which; mnv2gen.frontend.validate explains the limits).

An attribute check runs before shapes are verified, so it must not assume them; an
arithmetic check runs after and computes with the same `mnv2gen.quant` and
`mnv2gen.quant_params` functions as the reference and the code generator: requantisation
multipliers and shifts, int32 accumulator bounds, activation clamps. Every check returns
None and raises ModelError or UnsupportedError; the quant functions' ValueErrors become
one-line ModelErrors in validate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mnv2gen import quant, quant_params
from mnv2gen.errors import ModelError, UnsupportedError
from mnv2gen.ir import DType, Graph, Op, OpKind, Tensor

INT32_MAX = (1 << 31) - 1
HINT_LIMITS = "mnv2gen's limits are listed in the README (section 'Limits')"


@dataclass(frozen=True)
class Limits:
    """Sizes the pipeline keeps exact and bounded (see mnv2gen.frontend.validate)."""

    max_dim: int = (1 << 15) - 1               # int16_t band rows / channel-group bounds
    max_rank: int = 6
    max_tensor_bytes: int = INT32_MAX          # int32_t arena offsets
    max_activation_bytes: int = INT32_MAX      # sum over activations: layer-by-layer arena
    max_const_bytes: int = 64 << 20            # weights: 10x the largest MobileNetV2 (1.4)
    max_ops: int = 2000                        # MobileNet family models have < 400
    min_scale: float = 2.0 ** -126             # smallest normal float32
    max_scale: float = 2.0 ** 100              # * 2**8 stays far inside float32
    max_left_shift: int = 30                   # requantisation: x * 2**shift in int32
    max_pool_area: int = 1 << 23               # pooling and MEAN sums: 255 * area in int32
    max_reference_macs: int = 1 << 35          # NumPy reference: minutes, not hours
    max_reference_bytes: int = 4 << 30         # its largest operator's working memory
    max_float_elements: int = 1 << 26          # PTQ: a float tensor of one calibration sample


LIMITS = Limits()


def fail(label: str, where: str, what: str, hint: str = HINT_LIMITS,
         unsupported: bool = False) -> ModelError:
    """Return the one-line error '<label>: <where>: <what>' (UnsupportedError when the
    model is valid but outside what mnv2gen supports, ModelError when it is broken)."""
    cls = UnsupportedError if unsupported else ModelError
    return cls(f"{label}: {where}: {what}", hint)


@dataclass(frozen=True)
class Context:
    """What a rule's checks see: the graph, the file label for messages, the limits."""

    graph: Graph
    label: str
    limits: Limits

    def tensors(self, op: Op) -> tuple[Tensor, ...]:
        """Return the op's input tensors followed by its output tensor."""
        return tuple(self.graph.tensor(n) for n in (*op.inputs, op.outputs[0]))

    def fail(self, op: Op, what: str, hint: str = HINT_LIMITS,
             unsupported: bool = False) -> ModelError:
        """Return the error '<label>: operator N (KIND): <what>'."""
        return fail(self.label, op.describe(), what, hint, unsupported)



def window(label: str, where: str, strides: Iterable, dilations: Iterable, kernel: Iterable,
           limits: Limits = LIMITS) -> None:
    """Raise ModelError unless every stride, dilation and kernel size is an int in
    [1, max_dim]."""
    for field, values in (("stride", strides), ("dilation", dilations), ("kernel", kernel)):
        values = tuple(values)
        for v in values:
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) \
                    or not 1 <= v <= limits.max_dim:
                raise fail(label, where, f"{field} {values} is not supported; each must be "
                           f"an integer from 1 to {limits.max_dim}",
                           "a stride, dilation or kernel of 0 or less has no meaning")


def _padding(ctx: Context, op: Op, padding) -> None:
    values = (padding.top, padding.bottom, padding.left, padding.right)
    if not all(isinstance(v, int) and 0 <= v <= ctx.limits.max_dim for v in values):
        raise ctx.fail(op, f"padding (top, bottom, left, right) {values} is not supported; "
                       f"each must be from 0 to {ctx.limits.max_dim}", "the file is corrupt")


def _activation(ctx: Context, op: Op, y: Tensor) -> tuple[int, int]:
    activation = op.attrs.activation
    try:
        lo, hi = quant.activation_range(activation, y.scale, y.zero_point)
    except ValueError:
        raise ctx.fail(op, f"the fused {activation.value} clamp does not fit int32 at output "
                       f"scale {y.scale:.6g}", "the output scale is far too small") from None
    if lo > hi:
        raise ctx.fail(op, f"the fused {activation.value} clamp is empty at output scale "
                       f"{y.scale:.6g} and zero point {y.zero_point}", "the file is corrupt")
    return lo, hi


def _shifts(ctx: Context, op: Op, shifts, what: str) -> None:
    worst = int(np.max(shifts))
    if worst > ctx.limits.max_left_shift:
        raise ctx.fail(op, f"{what} needs a requantisation left shift of {worst} (more than "
                       f"{ctx.limits.max_left_shift}): its scales are inconsistent",
                       "scale ratios (input x weight / output) must be below 2**30")


def conv_attributes(ctx: Context, op: Op) -> None:
    """Check a convolution's strides, dilations, kernel, padding and depth multiplier."""
    a = op.attrs
    w = ctx.graph.tensor(op.inputs[1]).shape
    kernel = w[1:3] if len(w) == 4 else (1, 1)
    window(ctx.label, op.describe(), (a.stride_h, a.stride_w), (a.dilation_h, a.dilation_w),
           kernel, ctx.limits)
    _padding(ctx, op, a.padding)
    multiplier_ok = a.depth_multiplier == 1 if op.kind is OpKind.CONV_2D else (
        1 <= a.depth_multiplier <= ctx.limits.max_dim)
    if not multiplier_ok:
        raise ctx.fail(op, f"depth multiplier {a.depth_multiplier} is not supported",
                       "the file is corrupt")
    if op.kind is OpKind.DEPTHWISE_CONV_2D and w[0] != 1:
        raise ctx.fail(op, f"depthwise filter of shape {w} must have 1 in dimension 0",
                       "the file is corrupt")


def weighted_arithmetic(ctx: Context, op: Op) -> None:
    """Check bias size, weight scale count, requantisation shifts, int32 accumulator bounds and
    the clamp."""
    x, w, b, y = ctx.tensors(op)
    out_c = y.shape[-1]
    if b.shape != (out_c,):
        raise ctx.fail(op, f"bias {b.shape} does not have the {out_c} output channels",
                       "the file is corrupt")
    if len(w.quant.scale) not in (1, out_c):
        raise ctx.fail(op, f"{len(w.quant.scale)} weight scales for {out_c} output channels",
                       "the file is corrupt")
    if op.kind is OpKind.FULLY_CONNECTED and not w.quant.per_channel:
        _, shift = quant.fc_per_tensor_multiplier(x.scale, w.scale, y.scale)
        shifts = [shift]
    else:
        _, shifts = quant.per_channel_multipliers(x.scale, w.quant.scale, y.scale, out_c)
    _shifts(ctx, op, shifts, "the output")
    weights = np.abs(w.data.astype(np.int64))
    per_channel = (weights.sum(axis=(0, 1, 2)) if op.kind is OpKind.DEPTHWISE_CONV_2D
                   else weights.reshape(out_c, -1).sum(axis=1))
    largest_input = max(127 - x.zero_point, x.zero_point + 128)
    bound = np.abs(b.data.astype(np.int64)) + largest_input * per_channel
    if int(bound.max()) > INT32_MAX:
        c = int(np.argmax(bound))
        raise ctx.fail(op, f"output channel {c} can overflow the int32 accumulator (bias "
                       f"{int(b.data[c])} + up to {largest_input} x {int(per_channel[c])})",
                       "TFLite's kernels overflow too: the bias or weights are corrupt",
                       unsupported=True)
    _activation(ctx, op, y)


def add_arithmetic(ctx: Context, op: Op) -> None:
    """Check ADD's output scale against its inputs' (ratio below 2**20) and the clamp."""
    a, b, y = ctx.tensors(op)
    twice_max = 2 * max(np.float32(a.scale), np.float32(b.scale))
    if not float(twice_max) / ((1 << 20) * float(np.float32(y.scale))) < 1.0:
        raise ctx.fail(op, f"output scale {y.scale:.6g} is too small for input scales "
                       f"{a.scale:.6g} and {b.scale:.6g} (ratio above 2**20)",
                       "the scales are inconsistent")
    quant.add_params(a.scale, b.scale, y.scale)
    _activation(ctx, op, y)


def pool_attributes(ctx: Context, op: Op) -> None:
    """Check a pooling window: strides, filter, padding and window area."""
    a = op.attrs
    window(ctx.label, op.describe(), (a.stride_h, a.stride_w), (1, 1),
           (a.filter_h, a.filter_w), ctx.limits)
    _padding(ctx, op, a.padding)
    if a.filter_h * a.filter_w > ctx.limits.max_pool_area:
        raise ctx.fail(op, f"a {a.filter_h}x{a.filter_w} window sums more than "
                       f"{ctx.limits.max_pool_area:,} values")


def pool_arithmetic(ctx: Context, op: Op) -> None:
    """Check a pooling op keeps its quantisation, has no window all in padding, and the clamp."""
    x, y = ctx.tensors(op)
    if x.zero_point != y.zero_point or abs(np.float32(x.scale) - np.float32(y.scale)) > 1e-6:
        raise ctx.fail(op, "input and output quantisation differ",
                       f"{op.kind.value} does not rescale (as in TFLite Micro)",
                       unsupported=True)
    a, p = op.attrs, op.attrs.padding
    for size, out, kernel, stride, before in ((x.shape[1], y.shape[1], a.filter_h, a.stride_h,
                                               p.top),
                                              (x.shape[2], y.shape[2], a.filter_w, a.stride_w,
                                               p.left)):
        if before >= kernel or (out - 1) * stride - before >= size:
            raise ctx.fail(op, "a pooling window lies entirely in the padding",
                           "the padding is larger than the window", unsupported=True)
    _activation(ctx, op, y)


def mean_attributes(ctx: Context, op: Op) -> None:
    """Check MEAN's axes are distinct and within the input's rank."""
    rank = len(ctx.graph.tensor(op.inputs[0]).shape)
    axes = op.attrs.axes
    if not axes or list(axes) != sorted(set(axes)) or not all(0 <= a < rank for a in axes):
        raise ctx.fail(op, f"reduces axes {axes} of a rank-{rank} tensor",
                       "axes must be distinct and within the input's rank")


def mean_arithmetic(ctx: Context, op: Op) -> None:
    """Check MEAN's element count fits its int32 sum and its requantisation shift."""
    x, y = ctx.tensors(op)
    count = math.prod(x.shape[a] for a in op.attrs.axes)
    if count > ctx.limits.max_pool_area:
        raise ctx.fail(op, f"averages {count:,} values; at most {ctx.limits.max_pool_area:,} "
                       "fit its int32 sum")
    _, shift = quant.mean_multiplier(x.scale, y.scale, count)
    _shifts(ctx, op, [shift], "the mean")


def softmax_attributes(ctx: Context, op: Op) -> None:
    """Check SOFTMAX's beta is finite and positive."""
    beta = op.attrs.beta
    if not (math.isfinite(beta) and beta > 0):
        raise ctx.fail(op, f"beta {beta!r} is not supported; it must be finite and > 0",
                       "the file is corrupt")


def softmax_arithmetic(ctx: Context, op: Op) -> None:
    """Check SOFTMAX's output quantisation and its input scaling shift."""
    x, y = ctx.tensors(op)
    if y.zero_point != -128 or np.float32(y.scale) != np.float32(1 / 256):
        raise ctx.fail(op, f"int8 softmax output must have scale 1/256 and zero point -128, "
                       f"got {y.scale:.6g} and {y.zero_point}", "as TFLite requires",
                       unsupported=True)
    real = float(np.float32(op.attrs.beta)) * float(np.float32(x.scale)) * float(1 << 26)
    if not 1.0 < real < float(1 << 30):
        raise ctx.fail(op, f"beta x input scale = {real / (1 << 26):.6g} is outside "
                       "(2**-26, 16)", "the input scale is inconsistent", unsupported=True)
    quant.preprocess_softmax_scaling(op.attrs.beta, x.scale)


def pad_attributes(ctx: Context, op: Op) -> None:
    """Check PAD has one non-negative (before, after) pair per input dimension."""
    rank = len(ctx.graph.tensor(op.inputs[0]).shape)
    pads = op.attrs.paddings
    if len(pads) != rank or not all(
            len(p) == 2 and all(isinstance(v, int) and 0 <= v <= ctx.limits.max_dim for v in p)
            for p in pads):
        raise ctx.fail(op, f"paddings {pads} do not fit a rank-{rank} input; each must be "
                       f"from 0 to {ctx.limits.max_dim}", "the file is corrupt")


def transpose_attributes(ctx: Context, op: Op) -> None:
    """Check TRANSPOSE's permutation fits the input's rank."""
    rank = len(ctx.graph.tensor(op.inputs[0]).shape)
    if sorted(op.attrs.perm) != list(range(rank)):
        raise ctx.fail(op, f"permutation {op.attrs.perm} is not one of a rank-{rank} tensor",
                       "the file is corrupt")


def quantize_arithmetic(ctx: Context, op: Op) -> None:
    """Check an integer QUANTIZE's requantisation shift."""
    x, y = ctx.tensors(op)
    if x.dtype is DType.FLOAT32:
        return
    if x.quant is None:
        raise ctx.fail(op, f"input is {x.dtype.value} without quantisation",
                       "QUANTIZE between integer types needs both quantisations")
    _, shift = quant.requantize_multiplier(x.scale, y.scale)
    _shifts(ctx, op, [shift], "the requantisation")


def sub_arithmetic(ctx: Context, op: Op) -> None:
    """Check SUB's multipliers (TFLM CalculateOpDataSub) and the clamp."""
    a, b, y = ctx.tensors(op)
    quant_params.sub_params(a.scale, b.scale, y.scale)
    _activation(ctx, op, y)


def mul_arithmetic(ctx: Context, op: Op) -> None:
    """Check MUL's requantisation shift and the clamp."""
    a, b, y = ctx.tensors(op)
    _, shift = quant_params.mul_multiplier(a.scale, b.scale, y.scale)
    _shifts(ctx, op, [shift], "the product")
    _activation(ctx, op, y)


def hard_swish_arithmetic(ctx: Context, op: Op) -> None:
    """Check HARD_SWISH's parameters can be formed (as TFLM's Prepare)."""
    x, y = ctx.tensors(op)
    quant_params.hard_swish_params(x.scale, x.zero_point, y.scale, y.zero_point)


def logistic_arithmetic(ctx: Context, op: Op) -> None:
    """Check LOGISTIC's output zero point and input scale (as TFLM's Prepare)."""
    x, y = ctx.tensors(op)
    if y.zero_point != -128:
        raise ctx.fail(op, f"int8 LOGISTIC output must have zero point -128, got "
                       f"{y.zero_point}", "as TFLite requires", unsupported=True)
    quant_params.logistic_params(x.scale, x.zero_point)


def resize_attributes(ctx: Context, op: Op) -> None:
    """Check a resize's output size and its align_corners/half_pixel_centers pair."""
    a = op.attrs
    if not all(isinstance(v, int) and 1 <= v <= ctx.limits.max_dim
               for v in (a.height, a.width)):
        raise ctx.fail(op, f"output size {a.height}x{a.width} is not supported; each must "
                       f"be from 1 to {ctx.limits.max_dim}", "the file is corrupt")
    if a.align_corners and a.half_pixel_centers:
        raise ctx.fail(op, "sets both align_corners and half_pixel_centers",
                       "TFLite refuses this combination", unsupported=True)


def axis_attribute(extra: int = 0):
    """Return a check (raising ModelError) that the op's axis lies in its first input's
    rank plus `extra` (PACK adds an axis)."""
    def check(ctx: Context, op: Op) -> None:
        rank = len(ctx.graph.tensor(op.inputs[0]).shape) + extra
        axis = op.attrs.axis
        if not isinstance(axis, int) or not 0 <= axis < max(rank, 1):
            raise ctx.fail(op, f"axis {axis} is outside a rank-{rank} tensor",
                           "the file is corrupt")
    return check


def concat_arithmetic(ctx: Context, op: Op) -> None:
    """Check CONCATENATION's fused clamp."""
    _activation(ctx, op, ctx.graph.tensor(op.outputs[0]))


def strided_slice_attributes(ctx: Context, op: Op) -> None:
    """Check STRIDED_SLICE's begin/end/strides lengths and non-zero strides."""
    a = op.attrs
    rank = len(ctx.graph.tensor(op.inputs[0]).shape)
    if not len(a.begin) == len(a.end) == len(a.strides) or len(a.begin) > rank or \
            0 in a.strides:
        raise ctx.fail(op, f"begin/end/strides {a.begin}/{a.end}/{a.strides} do not fit a "
                       f"rank-{rank} input", "the file is corrupt")


