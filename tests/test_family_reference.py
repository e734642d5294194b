"""The family's head and edge operators: hand-computed cases, then reference == TFLite Micro
operator by operator on small synthetic models written with mnv2gen's TFLite writer.

Each synthetic model holds one operator (or a short chain) in configurations the real
files use and the corner cases they may not: broadcast shapes, both rounding directions
of every requantisation, align_corners / half_pixel_centers, windows clipped by padding,
ties in ARG_MAX, the fixed-point HARD_SWISH shift cases and every int8 LOGISTIC input.
"""

from __future__ import annotations

import numpy as np
import pytest
from family_builders import (
    arg_max,
    binary,
    binary_computed,
    concat,
    decoding_model,
    pad,
    pool,
    q,
    requantize_to_uint8,
    resize,
    squeeze_excite,
    transpose,
    unary,
)

from mnv2gen import reference
from mnv2gen.errors import UnsupportedError
from mnv2gen.frontend.tflite import load_tflite
from mnv2gen.frontend.tflite_writer import write_tflite
from mnv2gen.ir import (
    Activation,
    AxisAttrs,
    DType,
    Graph,
    NoAttrs,
    Op,
    OpKind,
    Padding,
    StridedSliceAttrs,
    Tensor,
    TransposeAttrs,
)
from mnv2gen.passes import run_passes
from mnv2gen.quant_params import hard_swish_params, logistic_params
from mnv2gen.reference import spatial
from mnv2gen.tflm import run_tflm_op_outputs, tflm_available

needs_tflm = pytest.mark.skipif(not tflm_available(),
                                reason="tflite-micro is not installed (pip install mnv2gen[tflm])")


def _run_one(g: Graph, x) -> np.ndarray:
    return reference.run(g, [np.asarray(x, dtype=g.tensor(g.inputs[0]).dtype.np)])[0]


# ---- hand-computed cases -----------------------------------------------------------------

def test_mul_by_a_channel_vector_by_hand():
    # s1 * s2 / s_out = 0.5 * 0.25 / 0.125 = 1: the product of the centred values itself.
    g = binary(OpKind.MUL, (1, 1, 2, 2), (2,), q(0.5, -128), q(0.25, 0), q(0.125, 0))
    w = g.tensor("w").data  # the random constant vector
    x = np.array([-126, -127, -128, -125], np.int8).reshape(1, 1, 2, 2)
    expected = np.clip((x.astype(int) + 128) * w.astype(int), -128, 127)
    assert _run_one(g, x).tolist() == expected.tolist()


def test_sub_of_equal_scales_is_the_integer_difference():
    # Equal scales: every multiplier is a power of two, so the result is x - w exactly.
    g = binary(OpKind.SUB, (1, 1, 1, 4), (), q(0.1, 0), q(0.1, 0), q(0.1, 0))
    w = int(g.tensor("w").data)
    x = np.array([5, -7, 100, -100], np.int8).reshape(1, 1, 1, 4)
    assert _run_one(g, x).ravel().tolist() == np.clip(x.ravel().astype(int) - w,
                                                       -128, 127).tolist()


def test_logistic_by_hand():
    p = logistic_params(0.268748, -17)  # the ST person classifier's head
    g = unary(OpKind.LOGISTIC, (1, 4), q(0.268748, -17), q(1 / 256, -128))
    edge = p.input_range_radius
    x = np.array([[-17, -17 + edge, -17 - edge, 127]], np.int8)
    # sigmoid(0) = 1/2 -> 128/256 -> q = 0; at and beyond the radius the output saturates.
    assert _run_one(g, x).tolist() == [[0, 127, -128, 127]]
    # In between it is round(256 * sigmoid(x)) - 128 up to the fixed point's last bit.
    xs = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    g = unary(OpKind.LOGISTIC, (1, 256), q(0.05, 3), q(1 / 256, -128))
    exact = 256 / (1 + np.exp(-0.05 * (xs.astype(float) - 3))) - 128
    assert np.abs(_run_one(g, xs) - np.clip(np.round(exact), -128, 127)).max() <= 1


def test_hard_swish_by_hand():
    # x * relu6(x + 3) / 6 at 1/16 steps: -3 -> 0, 3 -> 3, 6 -> 6, -1 -> -1/3.
    g = unary(OpKind.HARD_SWISH, (1, 5), q(1 / 16, 0), q(1 / 16, 0))
    x = np.array([[-48, 48, 96, -16, 0]], np.int8)
    assert _run_one(g, x).tolist() == [[0, 48, 96, -5, 0]]
    p = hard_swish_params(1 / 16, 0, 1 / 16, 0)
    assert p.output_exponent <= 0 and 0 < p.reluish_multiplier < 1 << 15


def test_resize_bilinear_by_hand():
    # 1x2 -> 1x4: scale 512/1024; without half-pixel centres x = 0, 0.5, 1, 1.5 (clamped),
    # with them x = -0.25 (clamped to 0), 0.25, 0.75, 1.25.
    x = np.array([0, 100], np.int8).reshape(1, 1, 2, 1)
    plain = resize(OpKind.RESIZE_BILINEAR, (1, 1, 2, 1), 1, 4)
    half = resize(OpKind.RESIZE_BILINEAR, (1, 1, 2, 1), 1, 4, half=True)
    assert _run_one(plain, x).ravel().tolist() == [0, 50, 100, 100]
    assert _run_one(half, x).ravel().tolist() == [0, 25, 75, 100]
    assert spatial.bilinear_scale_10(2, 4, False) == 512
    assert spatial.bilinear_scale_10(3, 5, True) == 512  # (3 - 1) / (5 - 1), align_corners


def test_resize_nearest_indices_by_hand():
    assert spatial.nearest_indices(4, 2, False, False).tolist() == [0, 0, 1, 1]
    assert spatial.nearest_indices(4, 2, False, True).tolist() == [0, 0, 1, 1]
    # align_corners: round(x * 2/4) half away from zero: 0.5 -> 1, 1.5 -> 2
    assert spatial.nearest_indices(5, 3, True, False).tolist() == [0, 1, 1, 2, 2]
    assert spatial.nearest_indices(3, 5, False, True).tolist() == [0, 2, 4]


def test_arg_max_takes_the_first_maximum():
    g = arg_max((1, 1, 2, 4), 3)
    x = np.array([3, 7, 7, 1, -5, -5, -5, -5], np.int8).reshape(1, 1, 2, 4)
    assert _run_one(g, x).tolist() == [[[1, 0]]]


def test_max_pool_window_in_padding_gives_activation_min():
    g = pool(OpKind.MAX_POOL_2D, (1, 2, 2, 1), (1, 1), (3, 3), Padding(1, 1, 1, 1), (2, 2),
             Activation.RELU)
    x = np.array([-20, 30, 40, -50], np.int8).reshape(1, 2, 2, 1)
    relu_min = -7  # the zero point
    assert _run_one(g, x).ravel().tolist() == [relu_min, relu_min, relu_min, -7]


# ---- reference == TFLite Micro ------------------------------------------------------------

def _oracle_inputs(g: Graph, count: int = 3) -> list[list[np.ndarray]]:
    t = g.tensor(g.inputs[0])
    info = np.iinfo(t.dtype.np)
    batches = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        batches.append([rng.integers(info.min, info.max + 1, t.shape).astype(t.dtype.np)])
    values = np.resize(np.arange(info.min, info.max + 1), t.num_elements)  # every value
    batches.append([values.astype(t.dtype.np).reshape(t.shape)])
    return batches


def tflm_mismatches(g: Graph) -> dict[str, int]:
    """Return {op name: differing bytes} of the reference against TFLM, every operator, on
    random inputs and on one input holding every value of the input type."""
    g = g.replace(ops=tuple(Op(o.kind, o.name, o.inputs, o.outputs, o.attrs, i)
                            for i, o in enumerate(g.ops)))
    model = write_tflite(g)
    bad: dict[str, int] = {}
    for inputs in _oracle_inputs(g):
        ours = reference.run_all(g, inputs)
        theirs = run_tflm_op_outputs(model, inputs)
        for op in g.ops:
            a = np.ascontiguousarray(ours[op.outputs[0]])
            b = np.ascontiguousarray(theirs[op.source_index]).reshape(a.shape).astype(a.dtype)
            count = int(np.count_nonzero(a.reshape(-1).view(np.uint8)
                                         != b.reshape(-1).view(np.uint8)))
            if count:
                bad[op.name] = bad.get(op.name, 0) + count
    return bad


ORACLE_CASES = {
    "mul_channel_vector": lambda: binary(OpKind.MUL, (1, 4, 5, 8), (8,), q(0.05, -3),
                                         q(0.004, -128), q(0.0039, -128)),
    "mul_scalar_relu6": lambda: binary(OpKind.MUL, (1, 4, 5, 3), (), q(0.0039, -128),
                                       q(0.0078, -128), q(0.0235, -128), Activation.RELU6),
    "mul_left_shift": lambda: binary(OpKind.MUL, (1, 3, 3, 4), (1, 1, 1, 4), q(0.5, 3),
                                     q(0.5, -1), q(0.01, 0)),
    "mul_computed": lambda: binary_computed(OpKind.MUL, (1, 3, 4, 5)),
    "squeeze_excite": squeeze_excite,
    "sub_scalar": lambda: binary(OpKind.SUB, (1, 4, 4, 3), (), q(0.0078, -128), q(0.0039, -128),
                                 q(0.0078, 0)),
    "sub_channel_vector_relu": lambda: binary(OpKind.SUB, (1, 2, 3, 6), (1, 1, 1, 6),
                                              q(0.11, 5), q(0.07, -9), q(0.05, -1),
                                              Activation.RELU),
    "sub_computed": lambda: binary_computed(OpKind.SUB, (1, 3, 4, 5)),
    "add_channel_vector": lambda: binary(OpKind.ADD, (1, 3, 4, 6), (6,), q(0.09, 2),
                                         q(0.03, -4), q(0.1, 1)),
    "hard_swish_mnv3": lambda: unary(OpKind.HARD_SWISH, (1, 6, 7, 8), q(0.11669, -56),
                                     q(0.0853623, -124)),
    "hard_swish_wide": lambda: unary(OpKind.HARD_SWISH, (1, 4, 4, 16), q(1.3773, 114),
                                     q(0.0703299, -123)),
    "hard_swish_narrow": lambda: unary(OpKind.HARD_SWISH, (1, 4, 4, 16), q(0.004, 3),
                                       q(0.003, -100)),
    "logistic_person": lambda: unary(OpKind.LOGISTIC, (1, 256), q(0.268748, -17),
                                     q(1 / 256, -128)),
    "logistic_fine": lambda: unary(OpKind.LOGISTIC, (1, 256), q(0.01, 20), q(1 / 256, -128)),
    "logistic_coarse": lambda: unary(OpKind.LOGISTIC, (1, 16, 16), q(0.7, -100),
                                     q(1 / 256, -128)),
    "resize_bilinear_up": lambda: resize(OpKind.RESIZE_BILINEAR, (1, 3, 4, 5), 7, 9),
    "resize_bilinear_align": lambda: resize(OpKind.RESIZE_BILINEAR, (1, 3, 4, 5), 7, 9,
                                            align=True),
    "resize_bilinear_half_pixel": lambda: resize(OpKind.RESIZE_BILINEAR, (1, 6, 6, 4), 12,
                                                 12, half=True),
    "resize_bilinear_down": lambda: resize(OpKind.RESIZE_BILINEAR, (1, 8, 9, 3), 3, 5,
                                           half=True),
    "resize_bilinear_aspp": lambda: resize(OpKind.RESIZE_BILINEAR, (1, 1, 1, 6), 5, 5),
    "resize_nearest_up": lambda: resize(OpKind.RESIZE_NEAREST_NEIGHBOR, (1, 3, 4, 5), 7, 9),
    "resize_nearest_align": lambda: resize(OpKind.RESIZE_NEAREST_NEIGHBOR, (1, 3, 4, 5), 7,
                                           9, align=True),
    "resize_nearest_half_pixel": lambda: resize(OpKind.RESIZE_NEAREST_NEIGHBOR, (1, 3, 4, 5),
                                                8, 10, half=True),
    "resize_nearest_down": lambda: resize(OpKind.RESIZE_NEAREST_NEIGHBOR, (1, 9, 7, 2), 4, 3,
                                          half=True),
    "max_pool_same": lambda: pool(OpKind.MAX_POOL_2D, (1, 7, 9, 4), (3, 3), (2, 2),
                                  Padding(1, 1, 1, 1), (4, 5)),
    "max_pool_valid_relu6": lambda: pool(OpKind.MAX_POOL_2D, (1, 6, 6, 3), (2, 2), (2, 2),
                                         Padding(), (3, 3), Activation.RELU6),
    "avg_pool_same_stride2": lambda: pool(OpKind.AVERAGE_POOL_2D, (1, 7, 9, 4), (3, 3), (2, 2),
                                          Padding(1, 1, 1, 1), (4, 5)),
    "avg_pool_global": lambda: pool(OpKind.AVERAGE_POOL_2D, (1, 7, 7, 16), (7, 7), (1, 1),
                                    Padding(), (1, 1)),
    "avg_pool_identity": lambda: pool(OpKind.AVERAGE_POOL_2D, (1, 1, 1, 16), (1, 1), (1, 1),
                                      Padding(), (1, 1)),
    "concat_channels": lambda: concat([(1, 2, 3, 4), (1, 2, 3, 2)], 3, [q(0.1, 3)] * 2,
                                      q(0.1, 3)),
    "concat_boxes": lambda: concat([(1, 20, 4), (1, 5, 4), (1, 2, 4)], 1, [q(0.01, 17)] * 3,
                                   q(0.01, 17)),
    "arg_max_channels": lambda: arg_max((1, 4, 5, 7), 3),
    "arg_max_rows": lambda: arg_max((1, 6, 5, 3), 1),
    "transpose_nchw_to_nhwc": lambda: transpose((1, 3, 5, 4), (0, 2, 3, 1)),
    "transpose_nhwc_to_nchw": lambda: transpose((1, 5, 4, 3), (0, 3, 1, 2)),
    "pad_channels": lambda: pad((1, 3, 3, 4), ((0, 0), (1, 2), (0, 1), (2, 0))),
    "quantize_to_uint8_xor": lambda: requantize_to_uint8((1, 10), q(1 / 256, -128),
                                                         q(1 / 256, 0)),
    "quantize_to_uint8_rescale": lambda: requantize_to_uint8((1, 3, 3, 2), q(0.05, -3),
                                                             q(0.07, 120)),
    "float_box_decoding": lambda: decoding_model(on_constants=False),
}


@needs_tflm
@pytest.mark.parametrize("case", sorted(ORACLE_CASES))
def test_reference_matches_tflm_on_every_operator(case):
    assert tflm_mismatches(ORACLE_CASES[case]()) == {}


@needs_tflm
def test_concatenation_of_differing_scales_is_requantised_as_tflite_does():
    g = concat([(1, 2, 3, 4), (1, 2, 3, 2), (1, 2, 3, 3)], 3, [q(0.1, 3), q(0.05, -20),
                                                                 q(0.2, 7)], q(0.1, 3))
    passed = run_passes(g)
    # the constant inputs are requantised offline into new constants (the generated code
    # has no arena bytes for a constant to requantise at run time)
    assert [op.kind for op in passed.ops] == [OpKind.CONCATENATION]
    assert all(passed.tensor(n).is_const for n in passed.ops[0].inputs[1:])
    assert tflm_mismatches(passed) == {}
    # a computed input quantised unlike the output gets TFLite's QUANTIZE
    g = concat([(1, 2, 3, 4), (1, 2, 3, 2)], 3, [q(0.05, -20), q(0.2, 7)], q(0.1, 3))
    passed = run_passes(g)
    assert [op.kind for op in passed.ops] == [OpKind.QUANTIZE, OpKind.CONCATENATION]
    assert tflm_mismatches(passed) == {}


def test_concatenation_refuses_differing_scales_without_the_pass():
    g = concat([(1, 2, 3, 4), (1, 2, 3, 2)], 3, [q(0.1, 3), q(0.05, -20)], q(0.1, 3))
    with pytest.raises(UnsupportedError, match="quantised differently"):
        reference.run(g, [np.zeros((1, 2, 3, 4), np.int8)])


@needs_tflm
def test_front_end_round_trip_of_every_new_kind():
    for case in ("mul_channel_vector", "resize_bilinear_half_pixel", "max_pool_same",
                 "arg_max_rows", "concat_boxes", "hard_swish_mnv3"):
        g = ORACLE_CASES[case]()
        again = load_tflite(write_tflite(g))
        assert [(o.kind, o.attrs) for o in again.ops] == [(o.kind, o.attrs) for o in g.ops]


# ---- shape plumbing, folded at compile time -----------------------------------------------

def dynamic_reshape(classes: int = 10) -> Graph:
    """Return x(1,1,1,K) -> SHAPE -> STRIDED_SLICE[0] -> PACK(b, K) -> RESHAPE(x) -> y(1,K):
    the batch-agnostic flatten exporters write before a classifier."""
    from family_builders import graph, t8

    tensors = [t8("x", (1, 1, 1, classes), q(0.1, -5)), Tensor("shape", (4,), DType.INT32),
               Tensor("batch", (), DType.INT32),
               Tensor("k", (), DType.INT32, None, np.array(classes, np.int32)),
               Tensor("target", (2,), DType.INT32), t8("y", (1, classes), q(0.1, -5))]
    return graph("dynamic_reshape", tensors, [
        Op(OpKind.SHAPE, "shape", ("x",), ("shape",), NoAttrs()),
        Op(OpKind.STRIDED_SLICE, "slice", ("shape",), ("batch",),
           StridedSliceAttrs((0,), (1,), (1,), shrink_axis_mask=1)),
        Op(OpKind.PACK, "pack", ("batch", "k"), ("target",), AxisAttrs(0)),
        Op(OpKind.RESHAPE, "reshape", ("x", "target"), ("y",), NoAttrs())])


@needs_tflm
def test_dynamic_reshape_matches_tflm_and_folds_away():
    g = dynamic_reshape()
    assert tflm_mismatches(g) == {}
    passed = run_passes(g)
    assert [(o.kind, len(o.inputs)) for o in passed.ops] == [(OpKind.RESHAPE, 1)]
    x = np.arange(-5, 5, dtype=np.int8).reshape(1, 1, 1, 10)
    assert reference.run(passed, [x])[0].tobytes() == reference.run(g, [x])[0].tobytes()


def test_a_computed_shape_that_disagrees_with_the_file_is_refused():
    g = dynamic_reshape()
    bad = g.replace(tensors={**g.tensors, "k": Tensor("k", (), DType.INT32, None,
                                                      np.array(5, np.int32))})
    with pytest.raises(UnsupportedError, match="computed shape"):
        run_passes(bad)


def test_a_transpose_of_unit_axes_becomes_a_reshape():
    g = transpose((1, 1, 1, 12), (0, 3, 1, 2))  # onnx2tf's classifier input
    assert [o.kind for o in run_passes(g).ops] == [OpKind.RESHAPE]
    g = transpose((1, 3, 5, 4), (0, 2, 3, 1))
    assert [o.kind for o in run_passes(g).ops] == [OpKind.TRANSPOSE]
    assert TransposeAttrs((0, 2, 3, 1)) == g.ops[0].attrs
