"""Reference kernels on tiny hand-built graphs, expectations worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnv2gen import reference
from mnv2gen.errors import MnvError
from mnv2gen.ir import (
    Activation,
    AddAttrs,
    ConvAttrs,
    DType,
    FullyConnectedAttrs,
    Graph,
    MeanAttrs,
    NoAttrs,
    Op,
    OpKind,
    PadAttrs,
    Padding,
    PoolAttrs,
    QuantParams,
    SoftmaxAttrs,
    Tensor,
    TransposeAttrs,
)
from mnv2gen.reference_ops import exp_on_negative_values_q5


def q(scale, zero_point=0, axis=0) -> QuantParams:
    scales = tuple(scale) if isinstance(scale, (list, tuple)) else (scale,)
    zps = (zero_point,) * len(scales)
    return QuantParams(tuple(float(np.float32(s)) for s in scales), zps, axis)


def t(name, shape, quant=None, dtype=DType.INT8, data=None) -> Tensor:
    if data is not None:
        data = np.asarray(data, dtype=dtype.np).reshape(shape)
    return Tensor(name, tuple(shape), dtype, quant, data)


def single_op(kind, attrs, inputs: list[Tensor], output: Tensor) -> Graph:
    """Return a graph x -> kind -> y; constants among `inputs` are not graph inputs."""
    tensors = {x.name: x for x in [*inputs, output]}
    op = Op(kind, "op", tuple(x.name for x in inputs), (output.name,), attrs, 0)
    graph = Graph("g", tensors, (op,), tuple(x.name for x in inputs if not x.is_const),
                  (output.name,))
    graph.verify()
    return graph


def run1(graph: Graph, *arrays) -> np.ndarray:
    return reference.run(graph, [np.asarray(a, dtype=graph.tensor(n).dtype.np)
                                 for a, n in zip(arrays, graph.inputs, strict=True)])[0]


def test_kernel_table_covers_every_op_kind():
    assert set(reference.KERNELS) == set(OpKind)


def test_conv2d_same_padding_per_channel():
    # offset input (zero point 1) is 0..8; channel 0: all-ones 3x3, bias 10, x0.5;
    # channel 1: all minus-ones, bias 0, x1.0. Output zero point -5.
    x = t("x", (1, 3, 3, 1), q(1.0, 1))
    w = t("w", (2, 3, 3, 1), q([1.0, 2.0]), data=[1] * 9 + [-1] * 9)
    b = t("b", (2,), q([1.0, 2.0]), DType.INT32, [10, 0])
    y = t("y", (1, 3, 3, 2), q(2.0, -5))
    g = single_op(OpKind.CONV_2D, ConvAttrs(1, 1, Padding(1, 1, 1, 1)), [x, w, b], y)
    out = run1(g, np.arange(1, 10).reshape(1, 3, 3, 1))
    window_sums = [8, 15, 12, 21, 36, 27, 20, 33, 24]
    # (s + 10) * 0.5, ties up: 9, 12.5->13, 11, 15.5->16, 23, 18.5->19, 15, 21.5->22, 17
    rounded = np.array([9, 13, 11, 16, 23, 19, 15, 22, 17])
    np.testing.assert_array_equal(out[..., 0].ravel(), rounded - 5)
    np.testing.assert_array_equal(out[..., 1].ravel(), -np.array(window_sums) - 5)


def test_conv2d_dilation_stride_and_relu6():
    # 5x5 input i*5+j, 3x3 ones dilated by 2, VALID: taps rows/cols {0,2,4}, sum 108, x0.5
    x = t("x", (1, 5, 5, 1), q(1.0))
    w = t("w", (1, 3, 3, 1), q(1.0), data=[1] * 9)
    b = t("b", (1,), q(1.0), DType.INT32, [0])
    y = t("y", (1, 1, 1, 1), q(2.0))
    g = single_op(OpKind.CONV_2D, ConvAttrs(1, 1, Padding(), dilation_h=2, dilation_w=2),
                  [x, w, b], y)
    assert run1(g, np.arange(25).reshape(1, 5, 5, 1)).item() == 54
    # stride 2, 1x1 kernel x1.0, RELU6 at scale 0.5 -> clamp to [0, 12]
    w1 = t("w", (1, 1, 1, 1), q(1.0), data=[1])
    y2 = t("y", (1, 3, 3, 1), q(0.5))
    g = single_op(OpKind.CONV_2D, ConvAttrs(2, 2, Padding(), Activation.RELU6), [x, w1, b], y2)
    out = run1(g, np.arange(25).reshape(1, 5, 5, 1) - 3)
    # picks rows/cols 0,2,4 of (i*5+j-3), doubled (1.0 / 0.5), clamped to [0, 12]
    np.testing.assert_array_equal(out.ravel(), [0, 0, 2, 12, 12, 12, 12, 12, 12])


def test_depthwise_with_depth_multiplier():
    # 2 input channels, multiplier 2: output channel 2c+m reads input channel c
    x = t("x", (1, 2, 2, 2), q(1.0, 0))
    w = t("w", (1, 2, 2, 4), q([1.0] * 4, axis=3),
          data=np.array([[1, 2, 3, 4]] * 4).ravel())  # every tap: channel weights 1,2,3,4
    b = t("b", (4,), q([1.0] * 4), DType.INT32, [0, 0, 0, 100])
    y = t("y", (1, 1, 1, 4), q(4.0, 1))
    g = single_op(OpKind.DEPTHWISE_CONV_2D, ConvAttrs(1, 1, Padding(), depth_multiplier=2),
                  [x, w, b], y)
    data = np.array([[[[1, 10], [2, 20]], [[3, 30], [4, 40]]]])  # channel sums 10 and 100
    # accs 10*1, 10*2, 100*3, 100*4+100; x0.25: 2.5->3, 5, 75, 125; + zero point 1, clamp
    np.testing.assert_array_equal(run1(g, data).ravel(), [4, 6, 76, 126])


def test_depthwise_padding_skips_outside_taps():
    # input zero point 5: pixels equal to 5 contribute nothing, nor does padding
    x = t("x", (1, 1, 3, 1), q(1.0, 5))
    w = t("w", (1, 1, 3, 1), q([1.0], axis=3), data=[1, 1, 1])
    b = t("b", (1,), q([1.0]), DType.INT32, [0])
    y = t("y", (1, 1, 3, 1), q(1.0, 0))
    g = single_op(OpKind.DEPTHWISE_CONV_2D, ConvAttrs(1, 1, Padding(0, 0, 1, 1)), [x, w, b], y)
    np.testing.assert_array_equal(run1(g, [[[[6], [7], [9]]]]).ravel(), [1 + 2, 1 + 2 + 4, 2 + 4])


@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected_batch_of_rows(per_channel):
    # input zero point 1, scale 0.5; weights 0.5 (or 0.5 / 0.25); output 0.25 -> x1.0 (x0.5)
    x = t("x", (2, 3), q(0.5, 1))
    wq = q([0.5, 0.25]) if per_channel else q(0.5)
    w = t("w", (2, 3), wq, data=[1, 2, 3, -1, 0, 1])
    b = t("b", (2,), q(0.25), DType.INT32, [5, -4])
    y = t("y", (2, 2), q(0.25, -3))
    g = single_op(OpKind.FULLY_CONNECTED, FullyConnectedAttrs(), [x, w, b], y)
    out = run1(g, [[2, 3, 4], [1, 1, 0]])
    # offset rows [1,2,3] and [0,0,-1]: accs [14+5, 2-4] and [-3+5, -1-4] = [19,-2], [2,-5]
    if per_channel:  # second channel x0.5: -1 -> -1, -2.5 -> -2 (ties toward +inf)
        np.testing.assert_array_equal(out, [[19 - 3, -1 - 3], [2 - 3, -2 - 3]])
    else:
        np.testing.assert_array_equal(out, [[19 - 3, -2 - 3], [2 - 3, -5 - 3]])


def test_add_rescales_and_rounds():
    # scales 0.5 + 0.25 -> 1.0: real sums 2.0, 0.5, -0.5, 0.25, 63.75+31.75
    a = t("a", (1, 5), q(0.5, 0))
    b = t("b", (1, 5), q(0.25, 0))
    y = t("y", (1, 5), q(1.0, 0))
    g = single_op(OpKind.ADD, AddAttrs(), [a, b], y)
    np.testing.assert_array_equal(run1(g, [[3, 1, -1, 1, 127]], [[2, 0, 0, -1, 127]]),
                                  [[2, 1, -1, 0, 95]])
    y_relu = t("y", (1, 5), q(1.0, 3))
    g = single_op(OpKind.ADD, AddAttrs(Activation.RELU), [a, b], y_relu)
    np.testing.assert_array_equal(run1(g, [[3, 1, -10, 1, 127]], [[2, 0, 0, -1, 127]]),
                                  [[5, 4, 3, 3, 98]])


def test_average_pool_clips_windows_and_rounds_away_from_zero():
    x = t("x", (1, 2, 2, 1), q(0.1, 0))
    y = t("y", (1, 2, 2, 1), q(0.1, 0))
    g = single_op(OpKind.AVERAGE_POOL_2D, PoolAttrs(3, 3, 1, 1, Padding(1, 1, 1, 1)), [x], y)
    # every window sees all four pixels: 1+2+2+0 = 5 over 4 -> 1.25 -> 1
    np.testing.assert_array_equal(run1(g, [[[[1], [2]], [[2], [0]]]]).ravel(), [1] * 4)
    g = single_op(OpKind.AVERAGE_POOL_2D, PoolAttrs(2, 2, 1, 1, Padding(0, 1, 0, 1)), [x], y)
    # windows at (0,0): 4 pixels, (0,1): 2, (1,0): 2, (1,1): 1
    out = run1(g, [[[[-1], [-4]], [[3], [-2]]]])
    # (-4)/4 = -1; (-6)/2 = -3; (1)/2 = 0.5 -> 1; -2
    np.testing.assert_array_equal(out.ravel(), [-1, -3, 1, -2])
    out = run1(g, [[[[1], [2]], [[-1], [-2]]]])
    # 0/4 = 0; 0/2 = 0; -3/2 = -1.5 -> -2; -2
    np.testing.assert_array_equal(out.ravel(), [0, 0, -2, -2])


@pytest.mark.parametrize("keep_dims", [False, True])
def test_mean_over_spatial_axes(keep_dims):
    x = t("x", (1, 2, 2, 2), q(0.1, 0))
    shape = (1, 1, 1, 2) if keep_dims else (1, 2)
    y = t("y", shape, q(0.1, 0))
    g = single_op(OpKind.MEAN, MeanAttrs((1, 2), keep_dims), [x], y)
    data = np.array([1, -1, 2, -2, 3, -3, 4, -4]).reshape(1, 2, 2, 2)
    # sums 10 and -10 over 4: x0.25 double rounded: 10 -> 5.5->5 -> 2.5->3; -10 -> -3
    np.testing.assert_array_equal(run1(g, data), np.array([3, -3]).reshape(shape))


def test_mean_over_channels_with_zero_points():
    x = t("x", (1, 1, 4, 3), q(0.1, 2))
    y = t("y", (1, 1, 4), q(0.1, -1))
    g = single_op(OpKind.MEAN, MeanAttrs((3,), False), [x], y)
    data = np.array([3, 3, 3, 4, 4, 4, 5, 4, 4, 1, 0, 1]).reshape(1, 1, 4, 3)
    # sums minus 3 * 2: 3, 6, 7, -4; multiplier (2**31 // 3, 0): 1.49->1, 2.49->2, 2.83->2,
    # -1.83->-1; + zero point -1
    np.testing.assert_array_equal(run1(g, data).ravel(), [0, 1, 1, -2])


def test_softmax_uniform_and_dominant_rows():
    x = t("x", (3, 2), q(0.1, 0))
    y = t("y", (3, 2), q(1 / 256, -128))
    g = single_op(OpKind.SOFTMAX, SoftmaxAttrs(1.0), [x], y)
    out = run1(g, [[5, 5], [-128, 127], [127, -128]])
    # equal logits: 0.5 -> 128 - 128 = 0; a gap of 25.5 (beyond the input radius for the
    # minimum) gives 1.0 -> clamped 127 and exactly -128
    np.testing.assert_array_equal(out, [[0, 0], [-128, 127], [127, -128]])


def test_softmax_close_to_float_and_sums_to_one():
    rng = np.random.default_rng(3)
    x = t("x", (4, 10), q(0.2, 3))
    y = t("y", (4, 10), q(1 / 256, -128))
    g = single_op(OpKind.SOFTMAX, SoftmaxAttrs(1.0), [x], y)
    data = rng.integers(-128, 128, (4, 10))
    out = run1(g, data).astype(np.int64) + 128
    logits = 0.2 * (data - 3)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected = 256 * expected / expected.sum(1, keepdims=True)
    assert np.abs(out - expected).max() <= 1
    assert np.all(np.abs(out.sum(1) - 256) <= 10)


def test_gemmlowp_exp_matches_exp():
    raws = np.array([0, -(1 << 24), -(1 << 26), -(3 << 25), -(31 << 26), -12345678])
    out = exp_on_negative_values_q5(raws)
    assert out[0] == (1 << 31) - 1
    expected = [math.exp(r / 2 ** 26) * 2 ** 31 for r in raws]
    # a 4th-order polynomial on [-1/4, 0): a few 1e-7 relative error
    assert np.abs(out - expected)[1:].max() < 1e-6 * 2 ** 31


def test_pad_uses_the_zero_point():
    x = t("x", (1, 1, 2, 1), q(0.1, -7))
    y = t("y", (1, 2, 3, 1), q(0.1, -7))
    g = single_op(OpKind.PAD, PadAttrs(((0, 0), (1, 0), (0, 1), (0, 0))), [x], y)
    np.testing.assert_array_equal(run1(g, [[[[1], [2]]]]).ravel(), [-7, -7, -7, 1, 2, -7])


def test_transpose_and_reshape():
    x = t("x", (1, 2, 3, 4), q(0.1))
    y = t("y", (1, 4, 2, 3), q(0.1))
    g = single_op(OpKind.TRANSPOSE, TransposeAttrs((0, 3, 1, 2)), [x], y)
    data = np.arange(24).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(run1(g, data), data.transpose(0, 3, 1, 2))
    r = t("r", (6, 4), q(0.1))
    g = single_op(OpKind.RESHAPE, NoAttrs(), [x], r)
    np.testing.assert_array_equal(run1(g, data), data.reshape(6, 4))


def test_quantize_float_rounds_half_away_and_saturates():
    x = t("x", (1, 6), None, DType.FLOAT32)
    y = t("y", (1, 6), q(0.5, 3))
    g = single_op(OpKind.QUANTIZE, NoAttrs(), [x], y)
    out = run1(g, [[0.25, -0.25, 0.75, 1000.0, -1000.0, 0.0]])
    # x / 0.5 = 0.5 -> 1, -0.5 -> -1, 1.5 -> 2; then + 3 and clamp
    np.testing.assert_array_equal(out, [[4, 2, 5, 127, -128, 3]])


def test_quantize_requantizes_integers():
    x = t("x", (1, 3), q(1 / 127, 127), DType.UINT8)
    y = t("y", (1, 3), q(1 / 127, -1))
    g = single_op(OpKind.QUANTIZE, NoAttrs(), [x], y)
    np.testing.assert_array_equal(run1(g, [[0, 127, 255]]), [[-128, -1, 127]])
    x = t("x", (1, 4), q(1.0, 0))
    y = t("y", (1, 4), q(2.0, 0))
    g = single_op(OpKind.QUANTIZE, NoAttrs(), [x], y)
    # x0.5 with ties toward +inf in the high multiply: 1.5 -> 2, -1.5 -> -1
    np.testing.assert_array_equal(run1(g, [[3, -3, 4, -128]]), [[2, -1, 2, -64]])


def test_dequantize():
    x = t("x", (1, 3), q(0.5, 3))
    y = t("y", (1, 3), None, DType.FLOAT32)
    g = single_op(OpKind.DEQUANTIZE, NoAttrs(), [x], y)
    out = run1(g, [[5, -128, 3]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.0, -65.5, 0.0]])


def test_run_checks_inputs_and_run_all_returns_activations():
    x = t("x", (1, 2, 2, 1), q(0.1))
    y = t("y", (1, 4), q(0.1))
    g = single_op(OpKind.RESHAPE, NoAttrs(), [x], y)
    with pytest.raises(MnvError, match=r"input 'x': expected shape \(1, 2, 2, 1\) int8, "
                                       r"got shape \(1, 4\) int8"):
        reference.run(g, [np.zeros((1, 4), np.int8)])
    with pytest.raises(MnvError, match="got shape .* float32"):
        reference.run(g, [np.zeros((1, 2, 2, 1), np.float32)])
    with pytest.raises(MnvError, match="expected 1 input"):
        reference.run(g, [])
    env = reference.run_all(g, [np.ones((1, 2, 2, 1), np.int8)])
    assert set(env) == {"x", "y"} and env["y"].shape == (1, 4)


def test_bad_scales_are_reported_with_the_operator():
    x = t("x", (1, 1, 1, 2), q(1.0))
    w = t("w", (3, 1, 1, 2), q([1.0, 1.0]), data=[1] * 6)  # 2 scales for 3 channels
    b = t("b", (3,), q(1.0), DType.INT32, [0, 0, 0])
    y = t("y", (1, 1, 1, 3), q(1.0))
    g = single_op(OpKind.CONV_2D, ConvAttrs(1, 1, Padding()), [x, w, b], y)
    with pytest.raises(MnvError, match=r"operator 0 \(CONV_2D\): 2 filter scales for 3"):
        run1(g, np.zeros((1, 1, 1, 2)))
