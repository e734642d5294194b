"""The C kernel API in one table (STYLE.md habit 6).

One row per `mnv2_*` function of templates/runtime/mnv2_ops.h: the IR operators it runs,
its C parameter struct, the CMSIS-NN v7 functions the CMSIS-NN backend calls for it,
when that backend runs the portable kernel instead, and the rule in
`mnv2gen.planner.scratch` that sizes its scratch. Both backends implement every row
with the same signature, so the generated schedule never depends on the backend.

Backends: "portable" compiles mnv2_ops_portable.c; "cmsis-nn" compiles mnv2_ops_cmsis.c,
which #includes mnv2_ops_portable.c (one copy of each kernel), plus the CMSIS-NN
library; "generated" compiles the model's own mnv2_kernels.c (kernels specialised per
layer shape, mnv2gen.codegen.generated) and the portable kernels for whatever it does not
specialise. Requantisation is TFLite's double rounding in all three
(CMSIS_NN_USE_SINGLE_ROUNDING must stay undefined).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mnv2gen.errors import MnvError, quoted
from mnv2gen.ir import OpKind
from mnv2gen.planner import scratch


@dataclass(frozen=True)
class Kernel:
    """One function of the kernel API."""

    symbol: str                       # C function declared in mnv2_ops.h
    ops: tuple[OpKind, ...]           # IR operators it implements (empty: a fused-unit step)
    params: str | None                # C parameter struct, if it takes one
    cmsis_nn: tuple[str, ...]         # CMSIS-NN functions the cmsis-nn backend calls
    portable_when: str                # when the cmsis-nn backend runs the portable code
    scratch_rule: str | None          # function of mnv2gen.planner.scratch, None: no scratch


KERNELS: tuple[Kernel, ...] = (
    Kernel("mnv2_conv_s8", (OpKind.CONV_2D,), "mnv2_conv_params",
           ("arm_convolve_1x1_s8_fast", "arm_convolve_1x1_s8", "arm_convolve_s8"),
           "never", "conv_scratch"),
    Kernel("mnv2_depthwise_conv_s8", (OpKind.DEPTHWISE_CONV_2D,), "mnv2_conv_params",
           ("arm_depthwise_conv_wrapper_s8", "arm_depthwise_conv_s8"), "never",
           "depthwise_scratch"),
    Kernel("mnv2_add_s8", (OpKind.ADD,), "mnv2_add_params", ("arm_elementwise_add_s8",),
           "left_shift < 16", None),
    Kernel("mnv2_avgpool_s8", (OpKind.AVERAGE_POOL_2D,), "mnv2_pool_params",
           ("arm_avgpool_s8",), "never", "avgpool_scratch"),
    Kernel("mnv2_mean_s8", (OpKind.MEAN,), None, (), "always", None),
    Kernel("mnv2_fully_connected_s8", (OpKind.FULLY_CONNECTED,), "mnv2_fc_params",
           ("arm_fully_connected_s8", "arm_fully_connected_per_channel_s8",
            "arm_vector_sum_s8"), "filter_offset != 0", "fully_connected_scratch"),
    Kernel("mnv2_softmax_s8", (OpKind.SOFTMAX,), None, ("arm_softmax_s8",), "row_size >= 512",
           None),
    Kernel("mnv2_requantize_s8", (OpKind.QUANTIZE,), None, (), "always", None),
    Kernel("mnv2_requantize_u8_s8", (OpKind.QUANTIZE,), None, (), "always", None),
    Kernel("mnv2_mul_s8", (OpKind.MUL,), "mnv2_mul_params", ("arm_elementwise_mul_s8",),
           "the innermost dimension is broadcast (a scalar operand)", None),
    Kernel("mnv2_sub_s8", (OpKind.SUB,), "mnv2_add_params", (), "always", None),
    Kernel("mnv2_add_broadcast_s8", (OpKind.ADD,), "mnv2_add_params", (), "always", None),
    Kernel("mnv2_hard_swish_s8", (OpKind.HARD_SWISH,), "mnv2_hard_swish_params", (), "always",
           None),
    Kernel("mnv2_logistic_s8", (OpKind.LOGISTIC,), "mnv2_logistic_params", (), "always", None),
    Kernel("mnv2_resize_bilinear_s8", (OpKind.RESIZE_BILINEAR,), "mnv2_resize_params", (),
           "always", None),
    Kernel("mnv2_resize_nearest_s8", (OpKind.RESIZE_NEAREST_NEIGHBOR,), None, (), "always",
           None),
    Kernel("mnv2_max_pool_s8", (OpKind.MAX_POOL_2D,), "mnv2_pool_params", ("arm_max_pool_s8",),
           "a window lies wholly in padding", None),
    Kernel("mnv2_copy_blocks", (OpKind.CONCATENATION,), None, (), "always", None),
    Kernel("mnv2_arg_max_s8_s32", (OpKind.ARG_MAX,), None, (), "always", None),
    Kernel("mnv2_arg_max_s8_s64", (OpKind.ARG_MAX,), None, (), "always", None),
    Kernel("mnv2_transpose_s8", (OpKind.TRANSPOSE,), None, (), "always", None),
    Kernel("mnv2_pad_s8", (OpKind.PAD,), None, (), "always", None),
    Kernel("mnv2_requantize_s8_u8", (OpKind.QUANTIZE,), None, (), "always", None),
    Kernel("mnv2_pointwise_accumulate_s32", (), None, (), "always", None),
    Kernel("mnv2_requantize_acc_s8", (), None, (), "always", None),
    # a global MEAN / AVERAGE_POOL_2D streamed row by row at the end of a segment
    Kernel("mnv2_sum_s32", (), None, (), "always", None),
    Kernel("mnv2_mean_finish_s8", (), None, (), "always", None),
    Kernel("mnv2_average_finish_s8", (), None, (), "always", None),
)

BY_SYMBOL: dict[str, Kernel] = {k.symbol: k for k in KERNELS}


@dataclass(frozen=True)
class Backend:
    """The runtime files one backend needs."""

    name: str
    copy: tuple[str, ...]     # files of templates/runtime/ the generated project needs
    compile: tuple[str, ...]  # the ones to compile (the others are included)
    needs_cmsis_nn: bool


BACKENDS: dict[str, Backend] = {
    "portable": Backend("portable", ("mnv2_ops.h", "mnv2_ops_portable.c"),
                        ("mnv2_ops_portable.c",), False),
    "cmsis-nn": Backend("cmsis-nn", ("mnv2_ops.h", "mnv2_ops_portable.c", "mnv2_ops_cmsis.c"),
                        ("mnv2_ops_cmsis.c",), True),
    "generated": Backend("generated", ("mnv2_ops.h", "mnv2_ops_portable.c",
                                       "mnv2_gen_kernels.h", "mnv2_gen_common.h",
                                       "mnv2_gen_pw.h", "mnv2_gen_dw.h", "mnv2_gen_conv.h"),
                         ("mnv2_ops_portable.c", "mnv2_kernels.c"), False),
}


def kernel_set(backend: str, dsp: bool, mve: bool) -> str:
    """Return the planner's kernel set (scratch rules) for a backend on a core."""
    if backend not in BACKENDS:
        raise MnvError(f"unknown kernel backend {quoted(backend)}",
                       f"backends: {', '.join(BACKENDS)}")
    if backend in ("portable", "generated"):
        return backend
    return "cmsis-mve" if mve else "cmsis-dsp" if dsp else "cmsis-c"


def scratch_rule(symbol: str) -> Callable[..., int] | None:
    """Return the scratch-size function of a kernel (None when it never needs scratch)."""
    rule = BY_SYMBOL[symbol].scratch_rule
    return None if rule is None else getattr(scratch, rule)
