"""The family kernels (templates/runtime/mnv2_ops_family.*) equal the NumPy reference bit
for bit, in both backends, over randomized parameters and shapes.

The libraries are the ones tests/test_c_kernels.py builds (portable always, CMSIS-NN when
CMSIS_NN_PATH is set). Parameters come from the functions code generation uses
(mnv2gen.quant_params, codegen.lower_family's broadcast/transpose geometry,
reference.spatial's resize tables), so a lowering bug shows here too.
"""

from __future__ import annotations

import ctypes
import math
import shutil

import numpy as np
import pytest
from family_builders import arg_max, binary, pad, pool, q, resize, transpose, unary
from test_c_kernels import BACKENDS, Dims, N, Ops, P, PoolParams, _compile_library

from mnv2gen import quant, quant_params, reference
from mnv2gen.codegen.lower_family import broadcast_geometry, transpose_geometry
from mnv2gen.ir import Activation, DType, Graph, OpKind, Padding
from mnv2gen.reference import spatial

Broadcast = type("Broadcast", (ctypes.Structure,), {"_fields_": [
    ("dims", ctypes.c_int32 * 4), ("stride_1", ctypes.c_int32 * 4),
    ("stride_2", ctypes.c_int32 * 4)]})
I32x4 = ctypes.c_int32 * 4
SIGNATURES = {
    "mul_s8": (P, P, P, P, P), "sub_s8": (P, P, P, P, P), "add_broadcast_s8": (P, P, P, P, P),
    "hard_swish_s8": (P, P, P, N), "logistic_s8": (P, P, P, N),
    "resize_bilinear_s8": (P, P, P, P, P), "resize_nearest_s8": (P, P, P, P, P, P),
    "max_pool_s8": (P, P, P, P, P, P, N), "copy_blocks": (P, P, N, N, N),
    "arg_max_s8_s32": (P, N, N, N, P), "arg_max_s8_s64": (P, N, N, N, P),
    "transpose_s8": (P, P, P, P), "pad_s8": (P, P, P, P, N, P),
    "requantize_s8_u8": (P, N, N, N, N, P, N),
}


@pytest.fixture(scope="session", params=BACKENDS)
def ops(request, tmp_path_factory) -> Ops:
    """The backend library test_c_kernels builds (its own copy: fixtures are per module)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    lib = _compile_library(request.param, tmp_path_factory.mktemp(f"family_{request.param}"))
    return Ops(request.param, ctypes.CDLL(str(lib)))


def _struct(values) -> ctypes.Structure:
    return type("Params", (ctypes.Structure,), {"_fields_": [
        (f"f{i}", ctypes.c_int32) for i in range(len(values))]})(*values)


def _call(ops, name: str, *args) -> None:
    fn = getattr(ops.lib, f"mnv2_{name}")
    fn.argtypes, fn.restype = SIGNATURES[name], ctypes.c_int32
    converted = [a.ctypes.data if isinstance(a, np.ndarray) else
                 ctypes.addressof(a) if isinstance(a, (ctypes.Structure, ctypes.Array)) else a
                 for a in args]
    assert fn(*converted) == 0, f"mnv2_{name} failed on {ops.backend}"


def _reference(g: Graph, x: np.ndarray) -> np.ndarray:
    return reference.run(g, [x])[0]


def _random(rng, shape, dtype=np.int8) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def _scale(rng) -> float:
    return float(np.float32(10.0 ** rng.uniform(-3, 0.3)))


BROADCASTS = [((1, 5, 6, 8), (8,)), ((1, 5, 6, 8), ()), ((1, 5, 6, 8), (1, 1, 1, 8)),
              ((1, 5, 6, 8), (1, 5, 1, 1)), ((1, 3, 4, 5), (1, 3, 4, 5)), ((2, 3, 1, 4), (3, 5, 4)),
              ((1, 1, 1, 16), (1, 1, 1, 16))]


@pytest.mark.parametrize("kind", [OpKind.MUL, OpKind.SUB, OpKind.ADD])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_broadcast_binaries(ops, kind, shapes):
    rng = np.random.default_rng(len(shapes[1]) * 7 + shapes[0][-1])
    for trial in range(3):
        activation = (Activation.NONE, Activation.RELU, Activation.RELU6)[trial]
        q1, q2, qy = (q(_scale(rng), int(rng.integers(-128, 128))) for _ in range(3))
        g = binary(kind, *shapes, q1, q2, qy, activation, seed=trial)
        x = _random(rng, shapes[0])
        w = np.ascontiguousarray(g.tensor("w").data)
        y_t = g.tensor("y")
        lo, hi = quant.activation_range(activation, y_t.scale, y_t.zero_point)
        if kind is OpKind.MUL:
            m, s = quant_params.mul_multiplier(q1.scale[0], q2.scale[0], qy.scale[0])
            params = _struct([-q1.zero_point[0], -q2.zero_point[0], qy.zero_point[0], m, s,
                              lo, hi])
        else:
            p = (quant_params.sub_params if kind is OpKind.SUB else quant.add_params)(
                q1.scale[0], q2.scale[0], qy.scale[0])
            params = _struct([-q1.zero_point[0], p.input1_multiplier, p.input1_shift,
                              -q2.zero_point[0], p.input2_multiplier, p.input2_shift,
                              p.left_shift, qy.zero_point[0], p.output_multiplier,
                              p.output_shift, lo, hi])
        dims, s1, s2 = broadcast_geometry(y_t.shape, shapes[0], shapes[1])
        geometry = Broadcast(I32x4(*dims), I32x4(*s1), I32x4(*s2))
        out = np.zeros(y_t.shape, np.int8)
        name = {OpKind.MUL: "mul_s8", OpKind.SUB: "sub_s8", OpKind.ADD: "add_broadcast_s8"}
        _call(ops, name[kind], params, geometry, x, w, out)
        assert out.tobytes() == _reference(g, x).tobytes(), (kind, shapes, trial)


@pytest.mark.parametrize("seed", range(6))
def test_hard_swish_and_logistic_on_every_input(ops, seed):
    rng = np.random.default_rng(seed)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    qx = q(_scale(rng) * 10, int(rng.integers(-128, 128)))
    qy = q(qx.scale[0] * rng.uniform(0.3, 1.0), int(rng.integers(-128, 0)))
    p = quant_params.hard_swish_params(qx.scale[0], qx.zero_point[0], qy.scale[0],
                                       qy.zero_point[0])
    out = np.zeros_like(x)
    _call(ops, "hard_swish_s8", _struct([p.input_zero_point, p.output_zero_point,
                                         p.reluish_multiplier, p.reluish_exponent,
                                         p.output_multiplier, p.output_exponent]), x, out, 256)
    assert out.tobytes() == _reference(unary(OpKind.HARD_SWISH, (1, 256), qx, qy), x).tobytes()
    lp = quant_params.logistic_params(qx.scale[0], qx.zero_point[0])
    _call(ops, "logistic_s8", _struct([lp.input_zero_point, lp.input_multiplier,
                                       lp.input_left_shift, lp.input_range_radius]), x, out, 256)
    g = unary(OpKind.LOGISTIC, (1, 256), qx, q(1 / 256, -128))
    assert out.tobytes() == _reference(g, x).tobytes()


RESIZES = [((1, 3, 4, 5), 7, 9), ((1, 8, 9, 3), 3, 5), ((1, 1, 1, 6), 5, 5), ((2, 6, 6, 2), 12, 12)]


@pytest.mark.parametrize("kind", [OpKind.RESIZE_BILINEAR, OpKind.RESIZE_NEAREST_NEIGHBOR])
@pytest.mark.parametrize("case", RESIZES, ids=str)
@pytest.mark.parametrize("flags", [(False, False), (True, False), (False, True)], ids=str)
def test_resize(ops, kind, case, flags):
    shape, height, width = case
    g = resize(kind, shape, height, width, *flags)
    x = _random(np.random.default_rng(height), shape)
    out = np.zeros(g.tensor("y").shape, np.int8)
    in_dims, out_dims = Dims(*shape), Dims(*out.shape)
    if kind is OpKind.RESIZE_BILINEAR:
        params = _struct([spatial.bilinear_scale_10(shape[1], height, flags[0]),
                          spatial.bilinear_scale_10(shape[2], width, flags[0]), int(flags[1])])
        _call(ops, "resize_bilinear_s8", params, in_dims, x, out_dims, out)
    else:
        rows = spatial.nearest_indices(height, shape[1], *flags).astype(np.int32)
        cols = spatial.nearest_indices(width, shape[2], *flags).astype(np.int32)
        _call(ops, "resize_nearest_s8", in_dims, x, out_dims, rows, cols, out)
    assert out.tobytes() == _reference(g, x).tobytes()


POOLS = [((1, 7, 9, 4), (3, 3), (2, 2), Padding(1, 1, 1, 1), (4, 5)),
         ((1, 6, 6, 3), (2, 2), (2, 2), Padding(), (3, 3)),
         ((2, 5, 5, 8), (3, 3), (1, 1), Padding(1, 1, 1, 1), (5, 5)),
         ((1, 2, 2, 1), (3, 3), (1, 1), Padding(2, 2, 2, 2), (4, 4))]  # windows in padding


@pytest.mark.parametrize("case", POOLS, ids=str)
@pytest.mark.parametrize("activation", [Activation.NONE, Activation.RELU6])
def test_max_pool(ops, case, activation):
    shape, filt, stride, padding, out_hw = case
    g = pool(OpKind.MAX_POOL_2D, shape, filt, stride, padding, out_hw, activation)
    x = _random(np.random.default_rng(shape[1]), shape)
    y = g.tensor("y")
    lo, hi = quant.activation_range(activation, y.scale, y.zero_point)
    params = PoolParams(*filt, *stride, padding.top, padding.left, lo, hi)
    out = np.zeros(y.shape, np.int8)
    _call(ops, "max_pool_s8", params, Dims(*shape), x, Dims(*y.shape), out, None, 0)
    assert out.tobytes() == _reference(g, x).tobytes()


@pytest.mark.parametrize("axis", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [DType.INT32, DType.INT64])
def test_arg_max(ops, axis, dtype):
    shape = (2, 3, 4, 5)
    g = arg_max(shape, axis, dtype)
    x = np.random.default_rng(axis).integers(-3, 3, shape).astype(np.int8)  # many ties
    out = np.zeros(g.tensor("y").shape, dtype.np)
    _call(ops, "arg_max_s8_s32" if dtype is DType.INT32 else "arg_max_s8_s64", x,
          math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]), out)
    assert out.tobytes() == _reference(g, x).tobytes()


@pytest.mark.parametrize("case", [((1, 3, 5, 4), (0, 2, 3, 1)), ((1, 5, 4, 3), (0, 3, 1, 2)),
                                  ((2, 3, 4, 5), (3, 1, 0, 2)), ((1, 1, 1, 12), (0, 3, 1, 2)),
                                  ((2, 3, 4, 5, 6), (0, 3, 4, 1, 2))], ids=str)
def test_transpose(ops, case):
    shape, perm = case
    g = transpose(shape, perm)
    x = _random(np.random.default_rng(len(perm)), shape)
    in_dims, new_perm = transpose_geometry(shape, perm)
    out = np.zeros(g.tensor("y").shape, np.int8)
    _call(ops, "transpose_s8", x, Dims(*in_dims), I32x4(*new_perm), out)
    assert out.tobytes() == _reference(g, x).tobytes()


def test_pad_concat_copies_and_uint8_requantisation(ops):
    rng = np.random.default_rng(3)
    g = pad((1, 3, 3, 4), ((0, 0), (1, 2), (0, 1), (2, 0)))
    x = _random(rng, (1, 3, 3, 4))
    out = np.zeros(g.tensor("y").shape, np.int8)
    _call(ops, "pad_s8", x, Dims(1, 3, 3, 4), I32x4(0, 1, 0, 2), I32x4(0, 2, 1, 0), 9, out)
    assert out.tobytes() == _reference(g, x).tobytes()
    a, b = _random(rng, (2, 3, 4)), _random(rng, (2, 5, 4))
    joined = np.zeros((2, 8, 4), np.int8)
    _call(ops, "copy_blocks", a, joined, 2, 12, 32)
    _call(ops, "copy_blocks", b, joined[:, 3:], 2, 20, 32)
    assert joined.tobytes() == np.concatenate([a, b], axis=1).tobytes()
    for qx, qy in ((q(1 / 256, -128), q(1 / 256, 0)), (q(0.05, -3), q(0.07, 120))):
        g = unary(OpKind.QUANTIZE, (1, 256), qx, qy, out_dtype=DType.UINT8)
        x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
        out = np.zeros((1, 256), np.uint8)
        m, s = quant.requantize_multiplier(qx.scale[0], qy.scale[0])
        _call(ops, "requantize_s8_u8", x, -qx.zero_point[0], m, s, qy.zero_point[0], out, 256)
        assert out.tobytes() == _reference(g, x).tobytes()


def test_every_family_kernel_is_bound_here():
    import re

    from test_c_kernels import RUNTIME

    header = (RUNTIME / "mnv2_ops_family.h").read_text()
    declared = re.findall(r"^int32_t (mnv2_\w+)\(", header, flags=re.M)
    assert sorted(declared) == sorted(f"mnv2_{name}" for name in SIGNATURES)
