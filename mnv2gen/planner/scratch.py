"""Kernel scratch bytes per kernel set, following CMSIS-NN v7.0.0's *_get_buffer_size rules
as built by GCC (the 1x1 fast kernel needs no buffer under GCC).

Kernel sets: "portable" (mnv2gen's own C kernels, which need no scratch), "generated"
(mnv2gen's per-layer kernels, no scratch either), "cmsis-c"
(no DSP extension: Cortex-M0/M3), "cmsis-dsp" (Cortex-M4/M7/M33), "cmsis-mve"
(Helium: Cortex-M55). Sizes are per call; the planner reserves the largest one a unit
makes, for the unit's lifetime.
"""

from __future__ import annotations

from mnv2gen.errors import MnvError, quoted

KERNEL_SETS = ("portable", "generated", "cmsis-c", "cmsis-dsp", "cmsis-mve")
#: Kernel sets whose kernels need no scratch: mnv2gen's own (portable, and the generated
#: kernels, which keep their tiles in registers and a conv patch on the stack).
_NO_SCRATCH = ("portable", "generated")
_CH_IN_BLOCK_MVE = 124


def _check(kernel_set: str) -> None:
    if kernel_set not in KERNEL_SETS:
        raise MnvError(f"unknown kernel set {quoted(kernel_set)}",
                       f"kernel sets: {', '.join(KERNEL_SETS)}")


def conv_scratch(kernel_set: str, in_c: int, kh: int, kw: int, stride: int,
                 pad_any: bool) -> int:
    """Return the scratch bytes of one CONV_2D call (arm_convolve_wrapper_s8 rules).

    The 1 x N special path is not taken by MobileNet layers (their kernels are square).
    """
    _check(kernel_set)
    if kernel_set in _NO_SCRATCH:
        return 0
    if (kh, kw) == (1, 1) and not pad_any:
        return 0
    cols = in_c * kh * kw
    if kernel_set == "cmsis-mve":
        return 4 * ((cols + 15) // 16) * 16
    return 2 * (cols + (-cols) % 4) * 2


def depthwise_scratch(kernel_set: str, channels: int, kh: int, kw: int, pad_top: int,
                      pad_left: int, multiplier: int) -> int:
    """Return the scratch bytes of one DEPTHWISE_CONV_2D call
    (arm_depthwise_conv_wrapper_s8 rules)."""
    _check(kernel_set)
    if kernel_set in (*_NO_SCRATCH, "cmsis-c") or multiplier != 1:
        if kernel_set == "cmsis-mve" and multiplier != 1 and channels == 1:
            return conv_scratch(kernel_set, 1, kh, kw, 1, True) + kh * kw * multiplier
        return 0
    if kernel_set == "cmsis-mve":
        return 4 * _CH_IN_BLOCK_MVE * kh * kw
    if (kh, kw) == (3, 3) and pad_top <= 1 and pad_left <= 1:
        return 0
    return channels * kh * kw * 2


def fully_connected_scratch(kernel_set: str, out_features: int) -> int:
    """Return the scratch bytes of one FULLY_CONNECTED call."""
    _check(kernel_set)
    return out_features * 4 if kernel_set == "cmsis-mve" else 0


def avgpool_scratch(kernel_set: str, channels: int) -> int:
    """Return the scratch bytes of one AVERAGE_POOL_2D call."""
    _check(kernel_set)
    return channels * 4 if kernel_set == "cmsis-dsp" else 0
