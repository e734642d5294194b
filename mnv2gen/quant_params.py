"""Quantisation parameters of SUB, MUL, HARD_SWISH and LOGISTIC, as TFLite Micro's Prepare
computes them, bit for bit (the float32/double mix of each kernel matters: see each function).

Conventions as in `mnv2gen.quant`: a (multiplier, shift) pair means real ~= multiplier *
2**(shift - 31), shift positive = left shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mnv2gen.quant import (
    AddParams,
    calculate_input_radius,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one,
    round_half_away,
)


def _f32(x) -> np.float32:
    return np.float32(x)


def sub_params(input1_scale: float, input2_scale: float, output_scale: float,
               left_shift: int = 20) -> AddParams:
    """Return int8 SUB's parameters (TFLM CalculateOpDataSub).

    Unlike ADD, SUB forms its three real multipliers in float32 (twice the larger input
    scale, each ratio, and (1 << 20) * output scale) before widening them to double.
    """
    twice_max = _f32(2) * max(_f32(input1_scale), _f32(input2_scale))
    m1, s1 = quantize_multiplier_smaller_than_one(float(_f32(input1_scale) / twice_max))
    m2, s2 = quantize_multiplier_smaller_than_one(float(_f32(input2_scale) / twice_max))
    mo, so = quantize_multiplier_smaller_than_one(
        float(twice_max / (_f32(1 << left_shift) * _f32(output_scale))))
    return AddParams(left_shift, m1, s1, m2, s2, mo, so)


def mul_multiplier(input1_scale: float, input2_scale: float,
                   output_scale: float) -> tuple[int, int]:
    """Return int8 MUL's (multiplier, shift): s1 * s2 / s_out in double (TFLM mul_common)."""
    real = float(_f32(input1_scale)) * float(_f32(input2_scale)) / float(_f32(output_scale))
    return quantize_multiplier(real)


def downscale_multiplier_to_int16(multiplier: int) -> int:
    """Return DownScaleInt32ToInt16Multiplier: the int32 multiplier rounded to 16 bits."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (multiplier + (1 << 15)) >> 16


@dataclass(frozen=True)
class HardSwishParams:
    """TFLite's HardSwishParams for int8 (16-bit fixed-point multipliers)."""

    input_zero_point: int
    output_zero_point: int
    reluish_multiplier: int  # int16
    reluish_exponent: int
    output_multiplier: int   # int16
    output_exponent: int     # <= 0


def hard_swish_params(input_scale: float, input_zero_point: int, output_scale: float,
                      output_zero_point: int) -> HardSwishParams:
    """Return HardSwishPrepare's parameters; raises ValueError where TFLM's Prepare fails.

    All scales are float32 (hires = input_scale / 128, reluish scale 3 / 32768); the two
    ratios are float32 divisions widened to double before QuantizeMultiplier.
    """
    hires = _f32(1.0 / 128.0) * _f32(input_scale)
    reluish_scale = _f32(3.0) / _f32(32768.0)
    out_m, out_e = quantize_multiplier(float(hires / _f32(output_scale)))
    if out_e > 0:
        raise ValueError("HARD_SWISH output scale is below input scale / 128: TFLite Micro "
                         "requires output_multiplier_exponent <= 0")
    relu_m, relu_e = quantize_multiplier(float(hires / reluish_scale))
    return HardSwishParams(input_zero_point, output_zero_point,
                           downscale_multiplier_to_int16(relu_m), relu_e,
                           downscale_multiplier_to_int16(out_m), out_e)


LOGISTIC_INPUT_BITS = 4


@dataclass(frozen=True)
class LogisticParams:
    """TFLM's OpDataLogistic for int8 (input rescaled to Q4.27)."""

    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def logistic_params(input_scale: float, input_zero_point: int) -> LogisticParams:
    """Return CalculateArithmeticOpDataLogistic's int8 parameters.

    input_scale * 2**27 (double) is split by frexp; the multiplier is round(q * 2**31)
    without QuantizeMultiplier's renormalisation. Raises ValueError for the scales where
    TFLite's arithmetic overflows (multiplier 2**31) or its radius shift is negative.
    """
    real = float(_f32(input_scale)) * float(1 << (31 - LOGISTIC_INPUT_BITS))
    q, shift = math.frexp(real)
    multiplier = int(round_half_away(q * float(1 << 31)))
    if multiplier >= 1 << 31 or shift < 0:
        raise ValueError(f"LOGISTIC input scale {input_scale} is outside the range TFLite's "
                         "integer sigmoid handles")
    radius = calculate_input_radius(LOGISTIC_INPUT_BITS, shift, 31)
    return LogisticParams(input_zero_point, multiplier, shift, radius)
