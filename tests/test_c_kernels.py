"""The C kernel layer (templates/runtime) equals mnv2gen's NumPy reference, bit for bit.

Both backends are compiled for the host with gcc into shared libraries and called with
ctypes: the portable kernels always, the CMSIS-NN backend when CMSIS_NN_PATH names a
CMSIS-NN v7 checkout (its Source/**/*.c built alongside, as TOOLCHAIN.md describes; the
host build runs CMSIS-NN's plain C paths). Every case is seeded; each kernel is checked
on whole tensors and on the sub-tensors the planner hands it: row bands (top padding
only, implied bottom padding at the border), channel groups, and group-split 1x1
projections accumulated in int32. Scratch is sized with mnv2gen.planner.scratch's rule
for plain C CMSIS-NN ("cmsis-c"), so a disagreement with CMSIS-NN's own rule fails here.
Cross-compiling both backends for Cortex-M4 and M55 proves they build warning-free.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from mnv2gen import kernels, quant, reference
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
    Padding,
    PoolAttrs,
    QuantParams,
    SoftmaxAttrs,
    Tensor,
)
from mnv2gen.planner import scratch as scratch_rules

RUNTIME = Path(__file__).resolve().parents[1] / "templates" / "runtime"
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")
CMSIS_NN_PATH = os.environ.get("CMSIS_NN_PATH")
BACKENDS = ("portable", pytest.param("cmsis-nn", marks=pytest.mark.skipif(
    not CMSIS_NN_PATH, reason="set CMSIS_NN_PATH to a CMSIS-NN v7 checkout to test that backend")))
ARM_TARGETS = {"cortex-m4": ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
               "cortex-m55": ("-mcpu=cortex-m55", "-mfloat-abi=hard")}
ACTIVATIONS = (Activation.NONE, Activation.RELU, Activation.RELU6)
GUARD_BYTES = 64  # checked after the output of every convolution call


def cmsis_sources(root: Path) -> list[Path]:
    """Return CMSIS-NN's int kernel sources: Source/**/*.c minus Bindings and float files."""
    return sorted(p for p in (root / "Source").rglob("*.c")
                  if "Bindings" not in p.parts and not re.search(r"_f(16|32)\b", p.stem))


# ---- the two libraries and their ctypes binding -----------------------------------------

def _struct(name: str, fields: str) -> type:
    return type(name, (ctypes.Structure,), {"_fields_": [(f, ctypes.c_int32) for f in
                                                          fields.split()]})


Dims = _struct("Dims", "n h w c")
ConvParams = _struct("ConvParams", "input_offset output_offset stride_h stride_w pad_top "
                                   "pad_left dilation_h dilation_w activation_min activation_max")
AddParams = _struct("AddParams", "input_1_offset input_1_multiplier input_1_shift input_2_offset "
                                 "input_2_multiplier input_2_shift left_shift output_offset "
                                 "output_multiplier output_shift activation_min activation_max")
PoolParams = _struct("PoolParams", "filter_h filter_w stride_h stride_w pad_top pad_left "
                                   "activation_min activation_max")
FcParams = _struct("FcParams", "input_offset filter_offset output_offset activation_min "
                               "activation_max")

P, N = ctypes.c_void_p, ctypes.c_int32
SIGNATURES = {  # argument types of every mnv2_* function, in mnv2_ops.h order
    "conv_s8": (P,) * 10 + (P, N), "depthwise_conv_s8": (P,) * 10 + (P, N),
    "add_s8": (P, P, P, P, N), "avgpool_s8": (P,) * 6 + (N,),
    "mean_s8": (P, N, N, N, N, N, N, N, P),
    "fully_connected_s8": (P, P, P, N, N, N, P, N, P, P, P, P, N),
    "softmax_s8": (P, N, N, N, N, N, P), "requantize_s8": (P, N, N, N, N, P, N),
    "requantize_u8_s8": (P, N, N, N, N, P, N),
    "pointwise_accumulate_s32": (P, N, N, N, P, N, P),
    "requantize_acc_s8": (P, N, N, P, P, P, N, N, N, P),
    "sum_s32": (P, N, N, P), "mean_finish_s8": (P, N, N, N, N, N, N, P),
    "average_finish_s8": (P, N, N, N, N, P),
}


def _compile_library(backend: str, out: Path) -> Path:
    """Build the backend as a host shared library; our sources with -Werror."""
    obj, lib = out / f"{backend}.o", out / f"libmnv2_{backend}.so"
    source = "mnv2_ops_portable.c" if backend == "portable" else "mnv2_ops_cmsis.c"
    include = [] if backend == "portable" else [f"-I{CMSIS_NN_PATH}/Include"]
    subprocess.run(["gcc", *CFLAGS, "-fPIC", *include, "-c", str(RUNTIME / source), "-o",
                    str(obj)], check=True, capture_output=True, text=True)
    extra = [] if backend == "portable" else [str(p) for p in cmsis_sources(Path(CMSIS_NN_PATH))]
    subprocess.run(["gcc", "-O2", "-fPIC", "-shared", *include, str(obj), *extra, "-o", str(lib)],
                   check=True, capture_output=True, text=True)
    return lib


class Ops:
    """ctypes calls of one backend; every call asserts the status (0 unless `expect`)."""

    def __init__(self, backend: str, lib: ctypes.CDLL) -> None:
        self.backend, self.lib = backend, lib
        for name, argtypes in SIGNATURES.items():
            fn = getattr(lib, f"mnv2_{name}")
            fn.argtypes, fn.restype = argtypes, ctypes.c_int32

    def __call__(self, name: str, *args, expect: int = 0) -> None:
        converted = [a.ctypes.data if isinstance(a, np.ndarray) else
                     ctypes.addressof(a) if isinstance(a, ctypes.Structure) else a for a in args]
        status = getattr(self.lib, f"mnv2_{name}")(*converted)
        assert status == expect, f"mnv2_{name} returned {status} on {self.backend}"


@pytest.fixture(scope="session", params=BACKENDS)
def ops(request, tmp_path_factory) -> Ops:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp(f"mnv2_{request.param}")
    try:
        lib = _compile_library(request.param, out)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"building the {request.param} kernels failed:\n{exc.stderr}")
    return Ops(request.param, ctypes.CDLL(str(lib)))


def i32(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int32)


def dims(shape) -> Dims:
    return Dims(*shape)


# ---- reference graphs -------------------------------------------------------------------

def f32(x) -> float:
    return float(np.float32(x))


def qp(scales, zero_point=0, axis=0) -> QuantParams:
    scales = tuple(f32(s) for s in np.atleast_1d(scales))
    return QuantParams(scales, (int(zero_point),) * len(scales), axis)


def run_reference(kind: OpKind, attrs, inputs: list[Tensor], output: Tensor, *arrays):
    """Return the reference kernel's output for one op over `inputs` (constants carry data)."""
    graph = Graph("case", {t.name: t for t in (*inputs, output)}, (), (), ())
    op = Op(kind, "op", tuple(t.name for t in inputs), (output.name,), attrs, 0)
    values = iter(arrays)
    args = [t.data if t.is_const else next(values) for t in inputs]
    return reference.KERNELS[kind](graph, op, args)


def act_tensor(name, shape, scale, zero_point, dtype=DType.INT8) -> Tensor:
    return Tensor(name, tuple(shape), dtype, qp(scale, zero_point))


def random_int8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


# ---- convolution and depthwise cases ----------------------------------------------------

@dataclass(frozen=True)
class ConvCase:
    """One randomized CONV_2D or DEPTHWISE_CONV_2D with its data and reference output."""

    depthwise: bool
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    multipliers: np.ndarray
    shifts: np.ndarray
    params: ConvParams
    expected: np.ndarray

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return self.w.shape[1], self.w.shape[2]


def _padding(rng, size: int, eff: int, stride: int) -> tuple[int, int]:
    """Return (before, after) padding: TFLite SAME, VALID, or random asymmetric."""
    mode = rng.choice(["same", "valid", "random"], p=[0.5, 0.2, 0.3])
    if mode == "valid" and size >= eff:
        return 0, 0
    if mode == "random":
        before, after = rng.integers(0, eff, 2)
        if (size + before + after - eff) >= 0:
            return int(before), int(after)
    total = max((-(-size // stride) - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def make_conv_case(seed: int, depthwise: bool) -> ConvCase:
    """Return a seeded random case: kernels 1/3/5/7, stride 1/2, odd channels, dilation."""
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 3, 5, 7], p=[0.3, 0.4, 0.2, 0.1]))
    stride = int(rng.choice([1, 2]))
    dilation = 2 if k > 1 and rng.random() < 0.15 else 1
    eff = (k - 1) * dilation + 1
    h, w = (int(v) for v in rng.integers(1, 13, 2))
    in_c = int(rng.integers(1, 20))
    mult = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1])) if depthwise else 1
    out_c = in_c * mult if depthwise else int(rng.integers(1, 24))
    (top, bottom), (left, right) = (_padding(rng, s, eff, stride) for s in (h, w))
    out_h, out_w = ((s + a + b - eff) // stride + 1 for s, a, b in ((h, top, bottom),
                                                                    (w, left, right)))
    batches = 2 if rng.random() < 0.1 else 1
    taps = k * k * (1 if depthwise else in_c)
    gain = rng.random() < 0.15  # multipliers above one: positive shifts
    w_shape = (1, k, k, out_c) if depthwise else (out_c, k, k, in_c)
    weights = rng.integers(-3, 4, w_shape) if gain else rng.integers(-127, 128, w_shape)
    in_scale, in_zp = f32(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    w_scales = rng.uniform(0.002, 0.02, out_c).astype(np.float32)
    acc_std = math.sqrt(taps) * 74 * (2 if gain else 73)
    if gain:
        out_scale = in_scale * float(w_scales.min()) / rng.uniform(1.5, 6)
    else:
        out_scale = in_scale * float(w_scales.mean()) * acc_std * 3 / 128 * math.exp(
            rng.uniform(-1.4, 1.4))
    out_zp = int(rng.integers(-128, 128))
    activation = ACTIVATIONS[rng.integers(0, 3)]
    bias = rng.integers(-int(acc_std), int(acc_std) + 1, out_c).astype(np.int32)

    x_t = act_tensor("x", (batches, h, w, in_c), in_scale, in_zp)
    w_t = Tensor("w", w_shape, DType.INT8, qp(w_scales, 0, 3 if depthwise else 0),
                 weights.astype(np.int8))
    b_t = Tensor("b", (out_c,), DType.INT32, qp(in_scale * w_scales), bias)
    y_t = act_tensor("y", (batches, out_h, out_w, out_c), out_scale, out_zp)
    attrs = ConvAttrs(stride, stride, Padding(top, bottom, left, right), activation, dilation,
                      dilation, mult)
    x = random_int8(rng, x_t.shape)
    kind = OpKind.DEPTHWISE_CONV_2D if depthwise else OpKind.CONV_2D
    expected = run_reference(kind, attrs, [x_t, w_t, b_t], y_t, x)
    multipliers, shifts = quant.per_channel_multipliers(in_scale, w_t.quant.scale, out_scale,
                                                        out_c)
    act_min, act_max = quant.activation_range(activation, out_scale, out_zp)
    params = ConvParams(-in_zp, out_zp, stride, stride, top, left, dilation, dilation, act_min,
                        act_max)
    return ConvCase(depthwise, x, w_t.data, bias, i32(multipliers), i32(shifts), params,
                    expected)


def conv_scratch_bytes(case: ConvCase, in_c: int, pad_top: int) -> int:
    """Return the planner's scratch rule for plain C CMSIS-NN (what the host build runs)."""
    kh, kw = case.kernel_hw
    if case.depthwise:
        multiplier = case.w.shape[3] // case.x.shape[3]
        return scratch_rules.depthwise_scratch("cmsis-c", in_c, kh, kw, pad_top,
                                               case.params.pad_left, multiplier)
    pad_any = pad_top > 0 or case.params.pad_left > 0
    return scratch_rules.conv_scratch("cmsis-c", in_c, kh, kw, case.params.stride_h, pad_any)


def run_conv(ops: Ops, case: ConvCase, x, w, bias, channels, out_rows: int, pad_top: int):
    """Call the C kernel on input `x` (a band or group) producing `out_rows` output rows."""
    c0, c1 = channels
    out_shape = (x.shape[0], out_rows, case.expected.shape[2], c1 - c0)
    guarded = np.full(math.prod(out_shape) + GUARD_BYTES, 99, np.int8)
    out = guarded[:-GUARD_BYTES].reshape(out_shape)
    params = ConvParams(*[getattr(case.params, f) for f, _ in ConvParams._fields_])
    params.pad_top = pad_top
    size = conv_scratch_bytes(case, x.shape[3], pad_top)
    buf = np.zeros(max(size, 1), np.int8)
    name = "depthwise_conv_s8" if case.depthwise else "conv_s8"
    ops(name, params, i32(case.multipliers[c0:c1]), i32(case.shifts[c0:c1]), dims(x.shape),
        np.ascontiguousarray(x), dims(w.shape), np.ascontiguousarray(w),
        None if bias is None else i32(bias[c0:c1]), dims(out_shape), out,
        buf if size else None, size)
    assert (guarded[-GUARD_BYTES:] == 99).all(), "wrote past the end of the output"
    return out


def band_bounds(rng, rows: int) -> list[tuple[int, int]]:
    """Return a random split of `rows` output rows into consecutive bands."""
    cuts = sorted(set(rng.integers(1, rows, rng.integers(0, rows))) if rows > 1 else ())
    edges = [0, *(int(c) for c in cuts), rows]
    return list(zip(edges[:-1], edges[1:], strict=True))


def band_input(case: ConvCase, y0: int, y1: int) -> tuple[int, int, int]:
    """Return (first input row, end row, pad_top) a band of output rows [y0, y1) reads."""
    p = case.params
    eff = (case.kernel_hw[0] - 1) * p.dilation_h + 1
    first, end = y0 * p.stride_h - p.pad_top, (y1 - 1) * p.stride_h - p.pad_top + eff
    lo, hi = max(first, 0), min(end, case.x.shape[1])
    return lo, hi, lo - first


def group_bounds(rng, channels: int) -> list[tuple[int, int]]:
    return band_bounds(rng, channels)


def group_slices(case: ConvCase, c0: int, c1: int):
    """Return (input, weights, output channel range) of input-channel group [c0, c1)."""
    if case.depthwise:
        m = case.w.shape[3] // case.x.shape[3]
        return case.x[..., c0:c1], case.w[..., c0 * m:c1 * m], (c0 * m, c1 * m)
    return case.x, case.w[c0:c1], (c0, c1)


CONV_SEEDS = range(60)


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@pytest.mark.parametrize("seed", CONV_SEEDS)
def test_conv_whole_tensor(ops, depthwise, seed):
    case = make_conv_case(seed, depthwise)
    out = run_conv(ops, case, case.x, case.w, case.bias, (0, case.expected.shape[3]),
                   case.expected.shape[1], case.params.pad_top)
    np.testing.assert_array_equal(out, case.expected)


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@pytest.mark.parametrize("seed", CONV_SEEDS)
def test_conv_row_bands_and_channel_groups(ops, depthwise, seed):
    """Bands of output rows (top padding only at the top, implied bottom padding at the
    bottom border), each optionally split into channel groups, reassemble the output."""
    case = make_conv_case(seed, depthwise)
    if case.x.shape[0] != 1:
        case = replace(case, x=case.x[:1], expected=case.expected[:1])
    rng = np.random.default_rng(1000 + seed)
    groups = group_bounds(rng, case.x.shape[3] if depthwise else case.w.shape[0])
    got = np.full_like(case.expected, 99)
    for y0, y1 in band_bounds(rng, case.expected.shape[1]):
        lo, hi, pad_top = band_input(case, y0, y1)
        if hi <= lo:  # the band reads padding only: no input rows to pass
            got[:, y0:y1] = case.expected[:, y0:y1]
            continue
        if rng.random() < 0.3:  # rows below the window are passed too, and never read
            hi = case.x.shape[1]
        for g0, g1 in groups:
            x, w, (o0, o1) = group_slices(case, g0, g1)
            got[:, y0:y1, :, o0:o1] = run_conv(ops, case, x[:, lo:hi], w, case.bias, (o0, o1),
                                               y1 - y0, pad_top)
    np.testing.assert_array_equal(got, case.expected)


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_3x3_with_wide_right_padding(ops, stride):
    """Output columns whose 3x3 window has only its left column inside (right padding 2):
    CMSIS-NN's 3x3 kernel would read the middle column regardless."""
    for seed in range(200):
        case = make_conv_case(seed, depthwise=True)
        p = case.params
        if case.kernel_hw == (3, 3) and p.dilation_w == 1 and p.stride_w == stride and \
                case.w.shape[3] == case.x.shape[3] and p.pad_left <= 1 and p.pad_top <= 1:
            break
    w_in = case.x.shape[2]
    out_w = (w_in + p.pad_left + 2 - 3) // stride + 1  # right padding 2
    if (out_w - 1) * stride - p.pad_left + 1 < w_in:
        out_w += 1
    wide = Padding(p.pad_top, 0, p.pad_left, (out_w - 1) * stride + 3 - w_in - p.pad_left)
    rng = np.random.default_rng(seed)
    x_t = act_tensor("x", case.x.shape, 0.05, -p.input_offset)
    mult = case.w.shape[3] // case.x.shape[3]
    scales = rng.uniform(0.002, 0.02, case.w.shape[3]).astype(np.float32)
    w_t = Tensor("w", case.w.shape, DType.INT8, qp(scales, 0, 3), case.w)
    b_t = Tensor("b", case.bias.shape, DType.INT32, qp(0.05 * scales), case.bias)
    out_h = (case.x.shape[1] + p.pad_top - 3) // stride + 1
    if out_h < 1:
        pytest.skip("no output row without bottom padding")
    y_t = act_tensor("y", (1, out_h, out_w, case.w.shape[3]), 1.0, p.output_offset)
    attrs = ConvAttrs(stride, stride, wide, Activation.NONE, 1, 1, mult)
    expected = run_reference(OpKind.DEPTHWISE_CONV_2D, attrs, [x_t, w_t, b_t], y_t, case.x[:1])
    m, sh = (i32(a) for a in quant.per_channel_multipliers(0.05, w_t.quant.scale, 1.0,
                                                           case.w.shape[3]))
    params = ConvParams(p.input_offset, p.output_offset, stride, stride, p.pad_top, p.pad_left,
                        1, 1, -128, 127)
    out = np.empty(expected.shape, np.int8)
    ops("depthwise_conv_s8", params, m, sh, dims((1, *case.x.shape[1:])), case.x[:1].copy(),
        dims(case.w.shape), case.w, i32(case.bias), dims(out.shape), out, None, 0)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("seed", range(30))
def test_conv_without_bias(ops, seed):
    case = make_conv_case(seed, seed % 2 == 1)
    out_c = case.expected.shape[3]
    zero = replace(case, bias=np.zeros(out_c, np.int32))
    with_zeros = run_conv(ops, zero, case.x, case.w, zero.bias, (0, out_c),
                          case.expected.shape[1], case.params.pad_top)
    without = run_conv(ops, case, case.x, case.w, None, (0, out_c), case.expected.shape[1],
                       case.params.pad_top)
    np.testing.assert_array_equal(without, with_zeros)


@pytest.mark.parametrize("seed", range(40))
def test_pointwise_group_accumulation_equals_projection(ops, seed):
    """Channel-group chunking: int32 partial sums of input-channel slices, then one
    requantisation, equal the whole 1x1 projection; also band by band."""
    rng = np.random.default_rng(2000 + seed)
    h, w, in_c, out_c = (int(v) for v in (*rng.integers(1, 9, 2), *rng.integers(1, 40, 2)))
    in_scale, in_zp = f32(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    w_scales = rng.uniform(0.002, 0.02, out_c).astype(np.float32)
    out_scale = in_scale * float(w_scales.mean()) * math.sqrt(in_c) * 74 * 73 * 3 / 128
    out_zp, activation = int(rng.integers(-128, 128)), ACTIVATIONS[rng.integers(0, 3)]
    weights = random_int8(rng, (out_c, 1, 1, in_c))
    bias = rng.integers(-20000, 20000, out_c).astype(np.int32)
    x_t = act_tensor("x", (1, h, w, in_c), in_scale, in_zp)
    w_t = Tensor("w", weights.shape, DType.INT8, qp(w_scales), weights)
    b_t = Tensor("b", (out_c,), DType.INT32, qp(in_scale * w_scales), bias)
    y_t = act_tensor("y", (1, h, w, out_c), out_scale, out_zp)
    x = random_int8(rng, x_t.shape)
    expected = run_reference(OpKind.CONV_2D, ConvAttrs(1, 1, Padding(), activation),
                             [x_t, w_t, b_t], y_t, x)
    mult, shift = (i32(a) for a in quant.per_channel_multipliers(in_scale, w_t.quant.scale,
                                                                 out_scale, out_c))
    lo, hi = quant.activation_range(activation, out_scale, out_zp)
    got = np.full_like(expected, 99)
    groups = group_bounds(rng, in_c)
    for y0, y1 in band_bounds(rng, h):
        pixels = (y1 - y0) * w
        acc = np.zeros((pixels, out_c), np.int32)
        for c0, c1 in groups:
            ops("pointwise_accumulate_s32", np.ascontiguousarray(x[0, y0:y1, :, c0:c1]), pixels,
                c1 - c0, -in_zp, np.ascontiguousarray(weights[:, 0, 0, c0:c1]), out_c, acc)
        band = np.empty((pixels, out_c), np.int8)
        ops("requantize_acc_s8", acc, pixels, out_c, bias, mult, shift, out_zp, lo, hi, band)
        got[0, y0:y1] = band.reshape(y1 - y0, w, out_c)
    np.testing.assert_array_equal(got, expected)


# ---- elementwise, pooling, MEAN, FC, softmax, QUANTIZE ------------------------------------

@pytest.mark.parametrize("seed", range(40))
def test_add(ops, seed):
    rng = np.random.default_rng(3000 + seed)
    shape = (1, *(int(v) for v in rng.integers(1, 12, 3)))
    s1, s2 = (f32(v) for v in rng.uniform(0.005, 0.2, 2))
    out_scale = f32(max(s1, s2) * rng.uniform(0.3, 3))
    zps = [int(v) for v in rng.integers(-128, 128, 3)]
    activation = ACTIVATIONS[rng.integers(0, 3)]
    tensors = [act_tensor(n, shape, s, z) for n, s, z in (("a", s1, zps[0]), ("b", s2, zps[1]))]
    out_t = act_tensor("y", shape, out_scale, zps[2])
    a, b = random_int8(rng, shape), random_int8(rng, shape)
    expected = run_reference(OpKind.ADD, AddAttrs(activation), tensors, out_t, a, b)
    p = quant.add_params(s1, s2, out_scale)
    lo, hi = quant.activation_range(activation, out_scale, zps[2])
    params = AddParams(-zps[0], p.input1_multiplier, p.input1_shift, -zps[1], p.input2_multiplier,
                       p.input2_shift, p.left_shift, zps[2], p.output_multiplier, p.output_shift,
                       lo, hi)
    out = np.empty(shape, np.int8)
    ops("add_s8", params, a, b, out, a.size)
    np.testing.assert_array_equal(out, expected)
    in_place = b.copy()  # the shortcut ADD written over one of its inputs
    ops("add_s8", params, a, in_place, in_place, a.size)
    np.testing.assert_array_equal(in_place, expected)
    lag = int(rng.integers(1, 40))  # output trailing into the input it reads
    arena = np.concatenate([np.zeros(lag, np.int8), a.ravel()])
    ops("add_s8", params, arena[lag:], b, arena, a.size)
    np.testing.assert_array_equal(arena[:a.size], expected.ravel())


@pytest.mark.parametrize("left_shift", [10, 16, 20])
def test_add_left_shift_other_than_tflites(ops, left_shift):
    """CMSIS-NN's DSP add needs left_shift >= 16; smaller ones take the portable path."""
    rng = np.random.default_rng(left_shift)
    a, b = random_int8(rng, 257), random_int8(rng, 257)
    p = quant.add_params(0.05, 0.02, 0.06, left_shift=left_shift)
    params = AddParams(3, p.input1_multiplier, p.input1_shift, -7, p.input2_multiplier,
                       p.input2_shift, left_shift, -2, p.output_multiplier, p.output_shift,
                       -128, 127)
    rescale = quant.multiply_by_quantized_multiplier
    total = (rescale((a.astype(np.int64) + 3) << left_shift, p.input1_multiplier, p.input1_shift)
             + rescale((b.astype(np.int64) - 7) << left_shift, p.input2_multiplier,
                       p.input2_shift))
    expected = np.clip(rescale(total, p.output_multiplier, p.output_shift) - 2, -128, 127)
    out = np.empty(257, np.int8)
    ops("add_s8", params, a, b, out, 257)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("seed", range(40))
def test_avgpool(ops, seed):
    rng = np.random.default_rng(4000 + seed)
    h, w, c = int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 70))
    if seed % 5 == 0:  # global pooling, as MobileNet heads
        fh, fw, stride = h, w, 1
    else:
        fh, fw, stride = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    (top, bottom), (left, right) = (_padding(rng, s, f, stride) for s, f in ((h, fh), (w, fw)))
    out_h, out_w = (h + top + bottom - fh) // stride + 1, (w + left + right - fw) // stride + 1
    if top >= fh or left >= fw or bottom >= fh or right >= fw:
        top, bottom, left, right = 0, 0, 0, 0  # keep every window partly inside
        out_h, out_w = max((h - fh) // stride + 1, 1), max((w - fw) // stride + 1, 1)
        fh, fw = min(fh, h), min(fw, w)
    scale, zp = f32(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    activation = ACTIVATIONS[rng.integers(0, 3)]
    attrs = PoolAttrs(fh, fw, stride, stride, Padding(top, bottom, left, right), activation)
    x = random_int8(rng, (1, h, w, c))
    out_t = act_tensor("y", (1, out_h, out_w, c), scale, zp)
    expected = run_reference(OpKind.AVERAGE_POOL_2D, attrs, [act_tensor("x", x.shape, scale, zp)],
                             out_t, x)
    lo, hi = quant.activation_range(activation, scale, zp)
    size = scratch_rules.avgpool_scratch("cmsis-c", c)
    out = np.empty(out_t.shape, np.int8)
    ops("avgpool_s8", PoolParams(fh, fw, stride, stride, top, left, lo, hi), dims(x.shape), x,
        dims(out.shape), out, None, size)
    np.testing.assert_array_equal(out, expected)


MEAN_SHAPES = [((1, 7, 7, 37), (1, 2)), ((1, 3, 5, 64), (1, 2)), ((2, 4, 4, 9), (1, 2)),
               ((1, 5, 6, 11), (3,)), ((1, 5, 6, 11), (2,)), ((1, 5, 6, 11), (1,)),
               ((1, 6, 13), (2,)), ((1, 6, 13), (1,)), ((1, 3, 4, 5), (2, 3)), ((3, 8), (1,)),
               ((2, 3, 4), (0, 1)), ((1, 1, 1, 1280), (1, 2))]


@pytest.mark.parametrize("keep_dims", [False, True])
@pytest.mark.parametrize("shape, axes", MEAN_SHAPES)
def test_mean(ops, shape, axes, keep_dims):
    """MEAN over one contiguous run of axes: outer x reduce x inner."""
    rng = np.random.default_rng(sum(shape) + len(axes))
    in_scale, out_scale = f32(rng.uniform(0.01, 0.1)), f32(rng.uniform(0.005, 0.2))
    in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(shape) if keep_dims
                      or i not in axes)
    x = random_int8(rng, shape)
    expected = run_reference(OpKind.MEAN, MeanAttrs(axes, keep_dims),
                             [act_tensor("x", shape, in_scale, in_zp)],
                             act_tensor("y", out_shape, out_scale, out_zp), x)
    outer = math.prod(shape[:axes[0]])
    reduce = math.prod(shape[axes[0]:axes[-1] + 1])
    inner = math.prod(shape[axes[-1] + 1:])
    mult, shift = quant.mean_multiplier(in_scale, out_scale, reduce)
    out = np.empty(out_shape, np.int8)
    ops("mean_s8", x, outer, reduce, inner, -in_zp, mult, shift, out_zp, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("seed", range(12))
def test_global_pooling_summed_row_by_row_equals_the_whole_kernel(ops, seed):
    """mnv2_sum_s32 over the rows in any split, then the finish, equals MEAN / AVERAGE_POOL_2D
    over the whole input (as a segment streams the head of a MobileNet)."""
    rng = np.random.default_rng(7000 + seed)
    h, w, c = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 300))
    x = random_int8(rng, (1, h, w, c))
    sums = np.zeros(c, np.int32)
    row = 0
    while row < h:  # uneven chunks of rows
        n = int(rng.integers(1, h - row + 1))
        ops("sum_s32", np.ascontiguousarray(x[0, row:row + n]), n * w, c, sums)
        row += n
    in_scale, out_scale = f32(rng.uniform(0.01, 0.1)), f32(rng.uniform(0.005, 0.2))
    in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
    mult, shift = quant.mean_multiplier(in_scale, out_scale, h * w)
    got, whole = np.empty(c, np.int8), np.empty(c, np.int8)
    ops("mean_finish_s8", sums, c, h * w, -in_zp, mult, shift, out_zp, got)
    ops("mean_s8", x, 1, h * w, c, -in_zp, mult, shift, out_zp, whole)
    np.testing.assert_array_equal(got, whole)
    lo, hi = quant.activation_range(ACTIVATIONS[seed % 3], in_scale, in_zp)
    pooled = np.empty((1, 1, 1, c), np.int8)
    ops("avgpool_s8", PoolParams(h, w, 1, 1, 0, 0, lo, hi), dims(x.shape), x, dims(pooled.shape),
        pooled, None, scratch_rules.avgpool_scratch("cmsis-c", c))
    ops("average_finish_s8", sums, c, h * w, lo, hi, got)
    np.testing.assert_array_equal(got, pooled.reshape(-1))


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("seed", range(25))
def test_fully_connected(ops, seed, per_channel):
    rng = np.random.default_rng(5000 + seed)
    batches, in_f, out_f = int(rng.integers(1, 4)), int(rng.integers(1, 300)), int(
        rng.integers(1, 50))
    in_scale, in_zp = f32(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    w_scales = rng.uniform(0.002, 0.02, out_f if per_channel else 1).astype(np.float32)
    w_zp = int(rng.integers(-20, 21)) if not per_channel and seed % 3 == 0 else 0
    out_scale = in_scale * float(w_scales.mean()) * math.sqrt(in_f) * 74 * 73 * 3 / 128
    out_zp, activation = int(rng.integers(-128, 128)), ACTIVATIONS[rng.integers(0, 3)]
    weights = rng.integers(-127 + max(w_zp, 0), 128 + min(w_zp, 0), (out_f, in_f)).astype(np.int8)
    bias = rng.integers(-30000, 30000, out_f).astype(np.int32)
    x_t = act_tensor("x", (batches, in_f), in_scale, in_zp)
    w_t = Tensor("w", weights.shape, DType.INT8, qp(w_scales, w_zp), weights)
    b_t = Tensor("b", (out_f,), DType.INT32, qp(in_scale * w_scales), bias)
    y_t = act_tensor("y", (batches, out_f), out_scale, out_zp)
    x = random_int8(rng, x_t.shape)
    expected = run_reference(OpKind.FULLY_CONNECTED, FullyConnectedAttrs(activation),
                             [x_t, w_t, b_t], y_t, x)
    if per_channel:
        mult, shift = quant.per_channel_multipliers(in_scale, w_t.quant.scale, out_scale, out_f)
    else:
        mult, shift = (np.array([v]) for v in quant.fc_per_tensor_multiplier(
            in_scale, w_t.scale, out_scale))
    lo, hi = quant.activation_range(activation, out_scale, out_zp)
    size = scratch_rules.fully_connected_scratch("cmsis-c", out_f)
    out = np.empty(y_t.shape, np.int8)
    ops("fully_connected_s8", FcParams(-in_zp, -w_zp, out_zp, lo, hi), i32(mult), i32(shift),
        int(per_channel), batches, in_f, x, out_f, weights, bias, out, None, size)
    np.testing.assert_array_equal(out, expected)


SOFTMAX_ROWS = (1, 2, 3, 10, 16, 17, 100, 511, 512, 1000, 1001, 4095, 4096, 6000)


@pytest.mark.parametrize("row_size", SOFTMAX_ROWS)
@pytest.mark.parametrize("seed", range(3))
def test_softmax(ops, row_size, seed):
    rng = np.random.default_rng(6000 + seed * 100 + row_size)
    rows = int(rng.integers(1, 4))
    scale, zp = f32(rng.uniform(0.01, 0.5)), int(rng.integers(-128, 128))
    beta = float(rng.choice([1.0, 0.5, 2.0]))
    x = random_int8(rng, (rows, row_size))
    expected = run_reference(OpKind.SOFTMAX, SoftmaxAttrs(beta),
                             [act_tensor("x", x.shape, scale, zp)],
                             act_tensor("y", x.shape, 1 / 256, -128), x)
    multiplier, left_shift = quant.preprocess_softmax_scaling(beta, scale)
    diff_min = -quant.calculate_input_radius(5, left_shift)
    out = np.empty_like(x)
    ops("softmax_s8", x, rows, row_size, multiplier, left_shift, diff_min, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("row_size", [300, 511, 512, 1000, 3000])
def test_softmax_with_many_ties(ops, row_size):
    """Rows whose sum of exponentials reaches 2^28 (512+ tied maxima): TFLM asserts there;
    the reference and both backends continue with exact 64-bit rounding."""
    rng = np.random.default_rng(row_size)
    x = np.full((3, row_size), 40, np.int8)
    x[1, rng.integers(0, row_size, row_size // 3)] = 39
    x[2] = rng.integers(38, 41, row_size)
    expected = run_reference(OpKind.SOFTMAX, SoftmaxAttrs(1.0), [act_tensor("x", x.shape, 0.01, 0)],
                             act_tensor("y", x.shape, 1 / 256, -128), x)
    multiplier, left_shift = quant.preprocess_softmax_scaling(1.0, 0.01)
    out = np.empty_like(x)
    ops("softmax_s8", x, 3, row_size, multiplier, left_shift,
        -quant.calculate_input_radius(5, left_shift), out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("unsigned", [True, False], ids=["uint8", "int8"])
@pytest.mark.parametrize("seed", range(20))
def test_requantize(ops, seed, unsigned):
    rng = np.random.default_rng(7000 + seed)
    size = int(rng.integers(1, 600))
    in_scale = f32(rng.uniform(0.005, 0.1))
    out_scale = in_scale if seed % 4 == 0 else f32(in_scale * rng.uniform(0.2, 5))
    dtype = DType.UINT8 if unsigned else DType.INT8
    in_zp = int(rng.integers(0, 256)) if unsigned else int(rng.integers(-128, 128))
    out_zp = in_zp - 128 if unsigned and seed % 4 == 0 else int(rng.integers(-128, 128))
    x = rng.integers(0, 256, size).astype(np.uint8) if unsigned else random_int8(rng, size)
    expected = run_reference(OpKind.QUANTIZE, NoAttrs(),
                             [act_tensor("x", (size,), in_scale, in_zp, dtype)],
                             act_tensor("y", (size,), out_scale, out_zp), x)
    mult, shift = quant.requantize_multiplier(in_scale, out_scale)
    name = "requantize_u8_s8" if unsigned else "requantize_s8"
    out = np.empty(size, np.int8)
    ops(name, x, -in_zp, mult, shift, out_zp, out, size)
    np.testing.assert_array_equal(out, expected)
    in_place = x.copy()  # the model input converted where it lies in the arena
    ops(name, in_place, -in_zp, mult, shift, out_zp, in_place, size)
    np.testing.assert_array_equal(in_place.view(np.int8), expected)


# ---- argument checks, portability -------------------------------------------------------

def test_argument_errors_are_reported(ops):
    x, out = np.zeros(64, np.int8), np.zeros(64, np.int8)
    ones = i32(np.ones(4))
    params = ConvParams(0, 0, 1, 1, 0, 0, 1, 1, -128, 127)
    good = (ones, ones, dims((1, 2, 2, 4)), x, dims((4, 1, 1, 4)), x, None, dims((1, 2, 2, 4)),
            out, None, 0)
    ops("conv_s8", params, *good)
    ops("conv_s8", params, *good[:4], dims((4, 1, 1, 3)), *good[5:], expect=-1)  # C_IN
    ops("conv_s8", ConvParams(0, 0, 0, 1, 0, 0, 1, 1, -128, 127), *good, expect=-1)  # stride
    ops("conv_s8", ConvParams(0, 0, 1, 1, 0, 0, 1, 1, 5, 4), *good, expect=-1)  # clamp
    ops("depthwise_conv_s8", params, ones, ones, dims((1, 2, 2, 3)), x, dims((1, 1, 1, 4)), x,
        None, dims((1, 2, 2, 4)), out, None, 0, expect=-1)  # 4 outputs from 3 inputs
    window_in_padding = PoolParams(1, 1, 1, 1, 1, 0, -128, 127)
    ops("avgpool_s8", window_in_padding, dims((1, 1, 1, 4)), x, dims((1, 2, 1, 4)), out, None,
        0, expect=-1)
    ops("softmax_s8", x, 1, 0, 1 << 30, 20, -10, out, expect=-1)
    ops("mean_s8", x, 1, 0, 4, 0, 1 << 30, 0, 0, out, expect=-1)


def test_cmsis_backend_rejects_too_small_scratch(ops):
    if ops.backend != "cmsis-nn":
        pytest.skip("the portable kernels need no scratch")
    x, out = np.zeros(200, np.int8), np.zeros(200, np.int8)
    ones = i32(np.ones(4))
    params = ConvParams(0, 0, 1, 1, 1, 1, 1, 1, -128, 127)
    need = scratch_rules.conv_scratch("cmsis-c", 4, 3, 3, 1, True)
    for size, expect in ((need - 1, -1), (need, 0)):
        buf = np.zeros(need, np.int8)
        ops("conv_s8", params, ones, ones, dims((1, 3, 3, 4)), x, dims((4, 3, 3, 4)), x, None,
            dims((1, 3, 3, 4)), out, buf, size, expect=expect)


def test_kernel_table_mirrors_the_c_api():
    core_header = (RUNTIME / "mnv2_ops.h").read_text()
    header = core_header + (RUNTIME / "mnv2_ops_family.h").read_text()
    cmsis_backend = "".join((RUNTIME / f).read_text() for f in ("mnv2_ops_cmsis.c",
                                                                 "mnv2_ops_cmsis_family.c"))
    declared = re.findall(r"^int32_t (mnv2_\w+)\(", header, flags=re.M)
    assert sorted(declared) == sorted(kernels.BY_SYMBOL)
    core = re.findall(r"^int32_t (mnv2_\w+)\(", core_header, flags=re.M)
    assert sorted(f"mnv2_{name}" for name in SIGNATURES) == sorted(core)
    called = set(re.findall(r"\b(arm_\w+)\(", cmsis_backend)) - {
        name for name in re.findall(r"\b(arm_\w+_get_buffer_size)\(", cmsis_backend)}
    assert called == {f for k in kernels.KERNELS for f in k.cmsis_nn}
    for k in kernels.KERNELS:
        overridden = re.search(rf"^int32_t {k.symbol}\(", cmsis_backend, flags=re.M) is not None
        assert overridden == bool(k.cmsis_nn), k.symbol
        falls_back = f"mnv2_portable_{k.symbol[5:]}(" in cmsis_backend
        assert falls_back == (k.portable_when not in ("never", "always")), k.symbol
        assert k.params is None or f"}} {k.params};" in header
        assert k.scratch_rule is None or callable(kernels.scratch_rule(k.symbol))
    if CMSIS_NN_PATH:
        api = (Path(CMSIS_NN_PATH) / "Include" / "arm_nnfunctions.h").read_text()
        assert all(re.search(rf"\b{f}\(", api) for f in called)


def test_runtime_sources_use_no_heap_and_no_floating_point():
    for path in RUNTIME.glob("mnv2_ops*"):
        code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        assert not re.search(r"\b(float|double|malloc|calloc|free)\b", code), path.name
        assert path.read_text().endswith("\n") and not path.read_text().endswith("\n\n")


@pytest.mark.parametrize("target", sorted(ARM_TARGETS))
@pytest.mark.parametrize("backend", ["portable", "cmsis-nn"])
def test_cross_compiles_warning_free(tmp_path, backend, target):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    include = []
    if backend == "cmsis-nn":
        if not CMSIS_NN_PATH:
            pytest.skip("set CMSIS_NN_PATH to a CMSIS-NN v7 checkout to build that backend")
        include = [f"-I{CMSIS_NN_PATH}/Include"]
    source = RUNTIME / ("mnv2_ops_portable.c" if backend == "portable" else "mnv2_ops_cmsis.c")
    result = subprocess.run(["arm-none-eabi-gcc", *ARM_TARGETS[target], "-mthumb", *CFLAGS,
                             *include, "-c", str(source), "-o", str(tmp_path / "ops.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
