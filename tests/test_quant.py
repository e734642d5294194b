"""Quantisation math against hand-computed expectations (TFLite default double rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from mnv2gen import quant
from mnv2gen.ir import Activation

M_HALF = 1 << 30  # the multiplier of every power of two


@pytest.mark.parametrize("real, expected", [
    (0.5, (M_HALF, 0)),                       # frexp(0.5) = 0.5 * 2**0
    (1.0, (M_HALF, 1)),                       # frexp(1.0) = 0.5 * 2**1
    (0.75, (3 << 29, 0)),
    (1 / 3, (1431655765, -1)),                # round(2/3 * 2**31) = round(1431655765.33)
    (0.25 * (1 - 2.0 ** -31), ((1 << 31) - 1, -2)),  # q * 2**31 = 2**31 - 1 exactly
    (0.25 * (1 - 2.0 ** -32), (M_HALF, -1)),  # 2**31 - 0.5 rounds away to 2**31: halved
    (0.25 * (1 - 2.0 ** -33), (M_HALF, -1)),  # 2**31 - 0.25 rounds to 2**31: halved
    (2.0 ** -32, (M_HALF, -31)),              # shift -31 is still representable
    (2.0 ** -33, (0, 0)),                     # shift -32 < -31 flushes to zero
    (2.0 ** -40, (0, 0)),
    (0.0, (0, 0)),
    (2.0 ** 22, (M_HALF, 23)),
])
def test_quantize_multiplier(real, expected):
    assert quant.quantize_multiplier(real) == expected


def test_quantize_multiplier_rejects_negative_and_nan():
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            quant.quantize_multiplier(bad)


def test_smaller_and_greater_than_one_variants_check_their_range():
    assert quant.quantize_multiplier_smaller_than_one(0.25) == (M_HALF, -1)
    assert quant.quantize_multiplier_greater_than_one(4.0) == (M_HALF, 3)
    with pytest.raises(ValueError):
        quant.quantize_multiplier_smaller_than_one(1.0)
    with pytest.raises(ValueError):
        quant.quantize_multiplier_greater_than_one(1.0)


def test_high_mul_rounds_ties_up_and_saturates():
    srdhm = quant.saturating_rounding_doubling_high_mul
    # a * b / 2**31: 2**30 / 2**31 = 0.5 -> 1, -0.5 -> 0, -1.5 -> -1 (ties toward +inf)
    assert srdhm(1 << 15, 1 << 15) == 1
    assert srdhm(-(1 << 15), 1 << 15) == 0
    assert srdhm(-3 << 15, 1 << 15) == -1
    assert srdhm(1 << 30, 1 << 30) == 1 << 29
    assert srdhm(quant.INT32_MIN, quant.INT32_MIN) == quant.INT32_MAX
    assert srdhm(quant.INT32_MIN, quant.INT32_MAX) == -quant.INT32_MAX
    np.testing.assert_array_equal(srdhm(np.array([3, -3, 5, -5]), M_HALF), [2, -1, 3, -2])


def test_rounding_divide_by_pot_rounds_ties_away_from_zero():
    x = np.array([3, -3, 1, -1, 5, -5, 6, -6, 7, -7])
    np.testing.assert_array_equal(quant.rounding_divide_by_pot(x, 1),
                                  [2, -2, 1, -1, 3, -3, 3, -3, 4, -4])
    np.testing.assert_array_equal(quant.rounding_divide_by_pot(x, 2),
                                  [1, -1, 0, 0, 1, -1, 2, -2, 2, -2])
    assert quant.rounding_divide_by_pot(-(1 << 31), 31) == -1
    assert quant.rounding_divide_by_pot(12345, 0) == 12345


def test_multiply_by_quantized_multiplier_double_rounding():
    mbqm = quant.multiply_by_quantized_multiplier
    # x0.25 = (2**30, -1): 5 -> high mul 2.5 -> 3 -> /2 = 1.5 -> 2 (single rounding gives 1)
    assert mbqm(5, M_HALF, -1) == 2
    assert mbqm(-5, M_HALF, -1) == -1   # -2.5 -> -2, then -1
    assert mbqm(3, M_HALF, 0) == 2      # x0.5: 1.5 -> 2
    assert mbqm(-3, M_HALF, 0) == -1    # -1.5 -> -1
    assert mbqm(3, M_HALF, 2) == 6      # x2: left shift first
    # the int32 left shift wraps as in C: 2**28 << 3 = 2**31 -> INT32_MIN, halved
    assert mbqm(1 << 28, M_HALF, 3) == -(1 << 30)


def test_multiply_by_quantized_multiplier_broadcasts_per_channel():
    acc = np.array([[10, 10, 10], [-10, -10, -10]])
    multipliers = np.array([M_HALF, M_HALF, 3 << 29])
    shifts = np.array([1, -2, 0])  # x1.0, x0.125, x0.75
    np.testing.assert_array_equal(quant.multiply_by_quantized_multiplier(acc, multipliers, shifts),
                                  [[10, 1, 8], [-10, -1, -7]])


@pytest.mark.parametrize("activation, scale, zero_point, expected", [
    (Activation.NONE, 0.05, -10, (-128, 127)),
    (Activation.RELU, 0.05, -10, (-10, 127)),
    (Activation.RELU6, 0.05, -10, (-10, 110)),          # 6 / 0.05f = 119.99999 -> 120
    (Activation.RELU_N1_TO_1, 0.05, -10, (-30, 10)),
    (Activation.RELU6, 4.0, 3, (3, 5)),                 # 6 / 4 = 1.5 rounds away to 2
    (Activation.RELU_N1_TO_1, 2.0, 0, (-1, 1)),         # -0.5 -> -1, 0.5 -> 1
    (Activation.RELU6, 0.01, 100, (100, 127)),          # 100 + 600 clamps to 127
    (Activation.RELU, 0.1, -200, (-128, 127)),          # zero point below int8 range
])
def test_activation_range(activation, scale, zero_point, expected):
    assert quant.activation_range(activation, scale, zero_point) == expected


def test_per_channel_multipliers_repeat_a_single_scale():
    m, s = quant.per_channel_multipliers(0.5, [0.5, 0.25], 1.0, 2)
    assert m.tolist() == [M_HALF, M_HALF] and s.tolist() == [-1, -2]
    m, s = quant.per_channel_multipliers(0.5, [0.5], 1.0, 3)
    assert m.tolist() == [M_HALF] * 3 and s.tolist() == [-1] * 3
    with pytest.raises(ValueError):
        quant.per_channel_multipliers(0.5, [0.5, 0.25], 1.0, 3)


def test_fully_connected_per_tensor_forms_the_scale_product_in_float32():
    # float32 scales where (a * b in float32) / c and a * b / c in double quantise apart:
    a, b, c = 0.06405920535326004, 0.027708884328603745, 0.005056378897279501
    assert quant.fc_per_tensor_multiplier(a, b, c) == (1507720476, -1)
    assert quant.per_channel_multipliers(a, [b], c, 1)[0].tolist() == [1507720493]


def test_add_params():
    p = quant.add_params(0.5, 0.25, 1.0)
    # twice_max = 1.0: inputs x0.5 and x0.25, output 1.0 / 2**20
    assert (p.left_shift, p.input1_multiplier, p.input1_shift) == (20, M_HALF, 0)
    assert (p.input2_multiplier, p.input2_shift) == (M_HALF, -1)
    assert (p.output_multiplier, p.output_shift) == (M_HALF, -19)


def test_mean_multiplier_divides_by_the_count():
    # equal scales: (2**30, 1); 49 elements: s = floor(log2 49) = 5, 2**35 // 49 = 701219150
    assert quant.mean_multiplier(0.1, 0.1, 49) == (701219150, -4)
    assert quant.mean_multiplier(0.1, 0.1, 4) == (M_HALF, -1)
    assert quant.mean_multiplier(0.1, 0.1, 3) == (715827882, 0)
    assert quant.mean_multiplier(0.1, 0.1, 1) == (M_HALF, 1)


def test_softmax_preprocessing():
    # beta * scale * 2**26 = 2**22 -> (2**30, 23); radius = 31 * 2**26 / 2**23 = 248
    assert quant.preprocess_softmax_scaling(1.0, 0.0625) == (M_HALF, 23)
    assert quant.calculate_input_radius(5, 23) == 248
    assert quant.calculate_input_radius(5, 30) == 1     # 31 / 16 -> 1
    assert quant.calculate_input_radius(5, 20) == 1984
    # clamped at 2**31 - 1 before quantising
    assert quant.preprocess_softmax_scaling(1.0, 1e6) == ((1 << 31) - 1, 31)


def test_round_half_away_and_wrap32():
    np.testing.assert_array_equal(quant.round_half_away([0.5, -0.5, 1.5, -2.5, 0.49999997]),
                                  [1, -1, 2, -3, 0])
    assert quant.wrap32((1 << 31) + 5) == quant.INT32_MIN + 5
    assert quant.wrap32(-(1 << 31) - 1) == quant.INT32_MAX
