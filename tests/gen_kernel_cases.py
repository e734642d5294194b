"""Random single-operator cases for the generated kernels, and a C program that runs them.

Each case is a one-op IR graph with seeded random data (channel counts 1..>256, odd ones,
every padding and stride the kernels take, extreme multipliers and offsets) and its
NumPy reference output. `program()` lowers every case through
mnv2gen.codegen.generated.kernels (the code path `build` uses), splits it into the calls
the planner makes (row bands, channel groups, int32 partial sums, in-place ADD) and writes
one C file that runs them all and prints each call's output bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mnv2gen import reference
from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated import kernels
from mnv2gen.codegen.generated.instances import InstanceSet
from mnv2gen.ir import (
    Activation,
    AddAttrs,
    ConvAttrs,
    DType,
    FullyConnectedAttrs,
    Graph,
    Op,
    OpKind,
    Padding,
    QuantParams,
    Tensor,
)

GUARD = 16


def _q(scales, zero_point=0, axis=0) -> QuantParams:
    scales = tuple(float(np.float32(s)) for s in np.atleast_1d(scales))
    return QuantParams(scales, (int(zero_point),) * len(scales), axis)


@dataclass
class Case:
    """One operator, its input arrays and reference output."""

    graph: Graph
    op: Op
    inputs: list[np.ndarray]
    expected: np.ndarray


def _act(rng, activation_choice=True) -> Activation:
    return (Activation.NONE, Activation.RELU, Activation.RELU6)[rng.integers(0, 3)] \
        if activation_choice else Activation.NONE


def _scales(rng, taps: int, out_c: int, extreme: bool):
    """Return (input scale, weight scales, output scale): realistic, or extreme gains
    (multipliers above one, or right shifts beyond the FAST range)."""
    in_scale = float(rng.uniform(0.01, 0.1))
    w_scales = rng.uniform(0.002, 0.02, out_c)
    acc_std = math.sqrt(taps) * 74 * 73
    out_scale = in_scale * float(w_scales.mean()) * acc_std * 3 / 128 * math.exp(
        rng.uniform(-1.4, 1.4))
    if extreme:
        out_scale *= float(rng.choice([1e-4, 1e-3, 3e3, 1e5]))
    return in_scale, w_scales, out_scale


def conv_case(rng, kind: str, extreme: bool = False) -> Case:
    """Return a random pw (1x1), dw (k x k depthwise) or conv (k x k, small patch) case."""
    if kind == "pw":
        k, stride, in_c = 1, 1, int(rng.choice([1, 2, 3, 5, 8, 16, 17, 24, 37, 64, 67, 96,
                                                  131, 160, 300]))
        out_c = int(rng.choice([1, 2, 3, 7, 8, 16, 24, 33, 64, 97, 144, 257]))
        h, w = int(rng.integers(1, 7)), int(rng.integers(1, 9))
    elif kind == "dw":
        k, stride = int(rng.choice([3, 3, 3, 5, 7])), int(rng.choice([1, 2]))
        in_c = out_c = int(rng.choice([1, 3, 4, 5, 8, 12, 16, 19, 32, 64, 96, 144, 260]))
        h, w = int(rng.integers(1, 11)), int(rng.integers(1, 11))
    else:
        k, stride = int(rng.choice([1, 3, 3, 5])), int(rng.choice([1, 2]))
        in_c = int(rng.choice([1, 1, 3, 3, 4, 8]))
        out_c = int(rng.choice([1, 5, 8, 16, 24, 32, 35]))
        h, w = int(rng.integers(1, 14)), int(rng.integers(1, 14))
    depthwise = kind == "dw" or (kind == "conv" and in_c == 1 and rng.random() < 0.5)
    pads = [_padding(rng, s, k, stride) if k > 1 else (0, 0) for s in (h, w)]
    (top, bottom), (left, right) = pads
    out_h, out_w = ((s + a + b - k) // stride + 1 for s, (a, b) in zip((h, w), pads, strict=True))
    taps = k * k * (1 if depthwise else in_c)
    in_scale, w_scales, out_scale = _scales(rng, taps, out_c, extreme)
    in_zp = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    out_zp = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    w_shape = (1, k, k, out_c) if depthwise else (out_c, k, k, in_c)
    weights = rng.integers(-127, 128, w_shape).astype(np.int8)
    if rng.random() < 0.1:
        weights[...] = rng.choice([-127, 127], w_shape)  # the accumulator bound
    bias = rng.integers(-int(math.sqrt(taps) * 5000), int(math.sqrt(taps) * 5000) + 1, out_c)
    x_t = Tensor("x", (1, h, w, in_c), DType.INT8, _q(in_scale, in_zp))
    w_t = Tensor("w", w_shape, DType.INT8, _q(w_scales, 0, 3 if depthwise else 0), weights)
    b_t = Tensor("b", (out_c,), DType.INT32, _q(in_scale * w_scales), bias.astype(np.int32))
    y_t = Tensor("y", (1, out_h, out_w, out_c), DType.INT8, _q(out_scale, out_zp))
    attrs = ConvAttrs(stride, stride, Padding(top, bottom, left, right), _act(rng), 1, 1,
                      out_c // in_c if depthwise else 1)
    op = Op(OpKind.DEPTHWISE_CONV_2D if depthwise else OpKind.CONV_2D, "op", ("x", "w", "b"),
            ("y",), attrs, 0)
    graph = Graph("case", {t.name: t for t in (x_t, w_t, b_t, y_t)}, (op,), ("x",), ("y",))
    x = rng.integers(-128, 128, x_t.shape).astype(np.int8)
    expected = reference.KERNELS[op.kind](graph, op, [x, w_t.data, b_t.data])
    return Case(graph, op, [x], expected)


def _padding(rng, size: int, k: int, stride: int) -> tuple[int, int]:
    mode = rng.choice(["same", "valid", "random"], p=[0.5, 0.2, 0.3])
    if mode == "valid" and size >= k:
        return 0, 0
    if mode == "random":
        before, after = (int(v) for v in rng.integers(0, k, 2))
        if size + before + after - k >= 0:
            return before, after
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def fc_case(rng) -> Case:
    """Return a random FULLY_CONNECTED, per-tensor or per-channel, 1..3 batches."""
    batches, in_f = int(rng.integers(1, 4)), int(rng.choice([1, 7, 64, 257, 1280]))
    out_f = int(rng.choice([1, 2, 10, 33, 1000]))
    per_channel = bool(rng.random() < 0.5)
    in_scale, w_scales, out_scale = _scales(rng, in_f, out_f if per_channel else 1, False)
    x_t = Tensor("x", (batches, in_f), DType.INT8, _q(in_scale, int(rng.integers(-128, 128))))
    w_t = Tensor("w", (out_f, in_f), DType.INT8, _q(w_scales, 0, 0),
                 rng.integers(-127, 128, (out_f, in_f)).astype(np.int8))
    b_t = Tensor("b", (out_f,), DType.INT32, _q(in_scale * float(w_scales[0])),
                 rng.integers(-20000, 20000, out_f).astype(np.int32))
    y_t = Tensor("y", (batches, out_f), DType.INT8, _q(out_scale, int(rng.integers(-128, 128))))
    op = Op(OpKind.FULLY_CONNECTED, "op", ("x", "w", "b"), ("y",),
            FullyConnectedAttrs(_act(rng)), 0)
    graph = Graph("case", {t.name: t for t in (x_t, w_t, b_t, y_t)}, (op,), ("x",), ("y",))
    x = rng.integers(-128, 128, x_t.shape).astype(np.int8)
    expected = reference.KERNELS[op.kind](graph, op, [x, w_t.data, b_t.data])
    return Case(graph, op, [x], expected)


def add_case(rng) -> Case:
    """Return a random ADD of two same-shape tensors."""
    shape = (1, int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 40)))
    s1, s2 = (float(rng.uniform(0.01, 0.2)) for _ in range(2))
    out_scale = float(rng.uniform(0.5, 2.0)) * max(s1, s2)
    zps = [int(rng.integers(-128, 128)) for _ in range(3)]
    t = [Tensor(n, shape, DType.INT8, _q(s, z)) for n, s, z in
         (("a", s1, zps[0]), ("c", s2, zps[1]), ("y", out_scale, zps[2]))]
    op = Op(OpKind.ADD, "op", ("a", "c"), ("y",), AddAttrs(_act(rng)), 0)
    graph = Graph("case", {x.name: x for x in t}, (op,), ("a", "c"), ("y",))
    a, c = (rng.integers(-128, 128, shape).astype(np.int8) for _ in range(2))
    return Case(graph, op, [a, c], reference.KERNELS[OpKind.ADD](graph, op, [a, c]))


@dataclass
class Program:
    """A C file running calls; per call the output bytes it must print."""

    source: str = ""
    expected: list[tuple[np.ndarray | None, int]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # the case of each output region
    out_bytes: int = 0


def _splits(rng, n: int) -> list[tuple[int, int]]:
    cuts = sorted(set(int(c) for c in rng.integers(1, n, rng.integers(0, min(n, 4))))) \
        if n > 1 else []
    edges = [0, *cuts, n]
    return list(zip(edges[:-1], edges[1:], strict=True))


class _Writer:
    def __init__(self) -> None:
        self.pool, self.instances = ConstPool(), InstanceSet("mnv2_tk")
        self.inputs: list[str] = []
        self.calls: list[str] = []
        self.program = Program()
        self.label = ""

    def array(self, values: np.ndarray) -> str:
        name = f"in{len(self.inputs)}"
        flat = ", ".join(str(int(v)) for v in np.ascontiguousarray(values).reshape(-1))
        self.inputs.append(f"static const int8_t {name}[{max(values.size, 1)}] "
                           f"__attribute__((aligned(4))) = {{ {flat or 0} }};")
        return name

    def output(self, expected: np.ndarray | None, size_bytes: int = 0) -> str:
        """Return a region of `out` for a call's output (None: scratch, not compared)."""
        offset = self.program.out_bytes
        size = expected.size if expected is not None else size_bytes
        self.program.out_bytes = -(-(offset + size + GUARD) // 4) * 4
        self.program.expected.append((None if expected is None else expected.reshape(-1),
                                      size))
        self.program.labels.append(self.label)
        return f"(out + {offset})"


def write_conv(wr: _Writer, rng, case: Case, index: int) -> None:
    """Append the calls of one conv case, split into bands and channel groups."""
    kind = kernels.kind_of(case.graph, case.op)
    x, y = case.inputs[0], case.expected
    symbol = f"c{index}"
    if kind == "pw":
        pixels = x.shape[1] * x.shape[2]
        in_c, out_c = x.shape[3], y.shape[3]
        x2, y2 = x.reshape(pixels, in_c), y.reshape(pixels, out_c)
        if rng.random() < 0.3 and in_c > 1:  # channel groups: int32 partial sums
            acc = wr.output(None, pixels * out_c * 4)
            wr.calls.append(f"memset({acc}, 0, {pixels * out_c * 4});")
            for g0, g1 in _splits(rng, in_c):
                call = kernels.pointwise(case.graph, case.op, wr.pool, symbol, inputs=(g0, g1),
                                         accumulate=True)
                xg = wr.array(x2[:, g0:g1])
                wr.calls.append(f"{wr.instances.name(call)}({xg}, {acc}, {pixels}, "
                                f"{call.arrays[0]}, {call.out_c});")
            call = kernels.requant_acc(case.graph, case.op, wr.pool, symbol)
            out = wr.output(y2)
            wr.calls.append(f"{wr.instances.name(call)}((const int32_t *)(const void *){acc}, "
                            f"{out}, {pixels}, {call.arrays[0]});")
            return
        xin = wr.array(x2)
        for o0, o1 in _splits(rng, out_c):
            call = kernels.pointwise(case.graph, case.op, wr.pool, symbol, outputs=(o0, o1))
            for p0, p1 in _splits(rng, pixels):
                out = wr.output(y2[p0:p1, o0:o1])
                wr.calls.append(f"{wr.instances.name(call)}({xin} + {p0 * in_c}, {out}, "
                                f"{p1 - p0}, {call.arrays[0]}, {call.out_c});")
        return
    a = case.op.attrs
    k = case.graph.tensor("w").shape[1]
    groups = _splits(rng, x.shape[3]) if kind == "dw" else _splits(rng, y.shape[3])
    for y0, y1 in _splits(rng, y.shape[1]):
        first = y0 * a.stride_h - a.padding.top
        lo, hi = max(first, 0), min((y1 - 1) * a.stride_h - a.padding.top + k, x.shape[1])
        if hi <= lo:
            continue  # the band reads padding only; the planner never makes one
        if rng.random() < 0.3:
            hi = x.shape[1]  # rows below the window are passed and never read
        for g0, g1 in groups:
            if kind == "dw":
                call = kernels.depthwise(case.graph, case.op, wr.pool, symbol, (g0, g1))
                xin = wr.array(x[0, lo:hi, :, g0:g1])
            else:
                call = kernels.conv(case.graph, case.op, wr.pool, symbol, (g0, g1))
                xin = wr.array(x[0, lo:hi])
            out = wr.output(y[0, y0:y1, :, g0:g1])
            wr.calls.append(f"{wr.instances.name(call)}({xin}, {hi - lo}, {lo - first}, {out}, "
                            f"{y1 - y0}, {call.arrays[0]});")


def write_fc(wr: _Writer, rng, case: Case, index: int) -> None:
    """Append one FULLY_CONNECTED call over all batches."""
    x, y = case.inputs[0], case.expected
    call = kernels.fully_connected(case.graph, case.op, wr.pool, f"f{index}")
    xin, out = wr.array(x), wr.output(y)
    wr.calls.append(f"{wr.instances.name(call)}({xin}, {out}, {x.shape[0]}, {call.arrays[0]}, "
                    f"{call.out_c});")


def write_add(wr: _Writer, rng, case: Case, index: int) -> None:
    """Append one ADD call; every other one writes in place over input 1."""
    a, c = case.inputs
    call = kernels.add(case.graph, case.op, "a", wr.pool, f"a{index}")
    out = wr.output(case.expected)
    name = wr.instances.name(call)
    cin = wr.array(c)
    if index % 2:
        ain = wr.array(a)
        wr.calls.append(f"memcpy({out}, {ain}, {a.size});")
        first = out
    else:
        first = wr.array(a)
    wr.calls.append(f"{name}({first}, {cin}, {out}, {a.size}, {call.arrays[0]}, "
                    f"{call.arrays[1]}, {call.arrays[2]});")


def program(cases: list[tuple[str, Case]], seed: int, env) -> Program:
    """Return the C program running every case, with the expected output of each call."""
    rng = np.random.default_rng(seed)
    wr = _Writer()
    for i, (kind, case) in enumerate(cases):
        wr.label = f"case {i} ({kind})"
        {"add": write_add, "fc": write_fc}.get(kind, write_conv)(wr, rng, case, i)
    consts = "\n".join(f"static const {a.ctype} {a.symbol}[{a.values.size}] "
                       f"__attribute__((aligned(16))) = {{\n{a.body()}\n}};"
                       for a in wr.pool.arrays)
    body = "\n    ".join(wr.calls)
    wr.program.source = f"""\
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif
#include <stdio.h>
#include <string.h>
#include "mnv2_gen_kernels.h"

{consts}
{chr(10).join(wr.inputs)}
static int8_t out[{wr.program.out_bytes}] __attribute__((aligned(16)));

{wr.instances.definitions(env)}
int main(void)
{{
    memset(out, 99, sizeof out);
    {body}
    for (unsigned i = 0; i < sizeof out; ++i)
    {{
        printf("%02x", (unsigned)(uint8_t)out[i]);
        if (i % 64 == 63) printf("\\n");
    }}
    printf("\\nEND\\n");
    return 0;
}}
"""
    return wr.program


def check(prog: Program, stdout: str) -> list[int]:
    """Return the indices of calls whose output (or guard bytes) differ."""
    hexes = "".join(line for line in stdout.splitlines() if line and line != "END"
                    and all(ch in "0123456789abcdef" for ch in line))
    data = np.frombuffer(bytes.fromhex(hexes), np.int8)
    bad, offset = [], 0
    for i, (want, size) in enumerate(prog.expected):
        got = data[offset:offset + size]
        guard = data[offset + size:offset + size + GUARD]
        if want is not None and not (np.array_equal(got, want.astype(np.int8))
                                     and (guard == 99).all()):
            bad.append(i)
        offset = -(-(offset + size + GUARD) // 4) * 4
    return bad
