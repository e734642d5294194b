"""The generated kernels (templates/runtime/mnv2_gen_*.h) equal the NumPy reference bit for
bit: on the host (plain C) and in QEMU on Cortex-M3 (plain C), M4 and M7 (DSP intrinsics).

Each program holds many seeded random single-operator cases (gen_kernel_cases.py): 1x1
with channel counts 1..300 (odd, not multiples of 4, pre-widened or not), depthwise 3/5/7
with stride 1/2 and every padding, small-patch convolutions and one-channel depthwise
multipliers, fully connected per-tensor and per-channel, ADD (also in place), realistic
and extreme requantisation (multipliers above one, right shifts beyond the fast range),
input and output zero points at both ends. Every case is split the way the planner calls
the kernels: row bands (padding only at the image border, rows below the window passed
but unread), channel groups and int32 partial sums over input-channel groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from codegen_helpers import need_toolchain
from gen_kernel_cases import add_case, check, conv_case, fc_case, program

from mnv2gen import quant
from mnv2gen.codegen.emit import _environment, templates_dir
from mnv2gen.codegen.generated import layout
from mnv2gen.toolchain import build_elf, run_elf

KINDS = ("pw", "dw", "conv", "add", "fc")


def random_cases(seed: int, count: int) -> list:
    """Return `count` seeded cases cycling through the kernel kinds, every 7th extreme."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        if kind == "add":
            case = add_case(rng)
        elif kind == "fc":
            case = fc_case(rng)
        else:
            case = conv_case(rng, kind, extreme=i % 7 == 4)
        cases.append((kind, case))
    return cases


def run_program(target: str, seed: int, count: int, tmp_path: Path) -> tuple[int, list[str]]:
    """Build and run one program of random cases; return (calls, labels of wrong calls)."""
    need_toolchain(target)
    prog = program(random_cases(seed, count), seed, _environment())
    (tmp_path / "main.c").write_text(prog.source)
    elf = build_elf(target, [tmp_path / "main.c"], [templates_dir() / "runtime"],
                    tmp_path / "build", extra_flags=("-Wextra", "-Werror"))
    result = run_elf(target, elf, 600, icount=False)
    assert result.exit_code == 0 and "END" in result.stdout, result.stderr[-2000:]
    return len(prog.expected), [prog.labels[i] for i in check(prog, result.stdout)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_cases_are_bit_exact_on_host(seed, tmp_path):
    calls, bad = run_program("host", seed, 120, tmp_path)
    assert calls > 300 and bad == []


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["cortex-m3", "cortex-m4", "cortex-m7"])
def test_random_cases_are_bit_exact_on_cortex_m(target, tmp_path):
    calls, bad = run_program(target, 10 + len(target), 90, tmp_path)
    assert calls > 200 and bad == []  # a few hundred kernel calls, every one bit-exact


_REQUANT_PROGRAM = """\
#include <stdio.h>
#include "mnv2_gen_common.h"
/* mode (0 FAST, 1 EXACT), acc, multiplier, round (FAST) or output offset (EXACT), shift,
 * EXACT's rounding mask */
static const int32_t cases[][6] = {
%s
};
int main(void)
{
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    {
        const int32_t *c = cases[i];
        const int32_t q[3] = {c[2], c[0] == 0 ? c[3] : c[5], c[4]};
        printf("%%d\\n", c[0] == 0 ? mnv2_g_out(c[1], q, MNV2_RQ_FAST, 0, -128, 127)
                                   : mnv2_g_out(c[1], q, MNV2_RQ_EXACT, c[3], -128, 127));
    }
    return 0;
}
"""


def _requant_cases(rng, count: int):
    """Return rows (mode, acc, multiplier, round or offset, shift, mask) and the expected
    outputs:
    FAST rows within its proven range (|acc| < 2^30, right shifts 1..23), EXACT rows with
    any shift, including left shifts that wrap and accumulators at the int32 ends."""
    rows, expected = [], []
    for i in range(count):
        mult = int(rng.choice([0, 1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31))]))
        off = int(rng.integers(-128, 128))
        if i % 2:
            right = int(rng.integers(1, 24))
            acc = int(rng.choice([-(1 << 30) + 1, (1 << 30) - 1, 0, -1,
                                  int(rng.integers(-(1 << 30) + 1, 1 << 30))]))
            rows.append((0, acc, mult, (1 << (right - 1)) + (off << right), right, 0))
            shift = -right
        else:
            shift = int(rng.integers(-31, 8))
            acc = int(rng.choice([-(1 << 31), (1 << 31) - 1,
                                  int(rng.integers(-(1 << 31), 1 << 31))]))
            rows.append((1, acc, mult, off, shift, (1 << max(-shift, 0)) - 1))
        value = int(quant.multiply_by_quantized_multiplier(acc, mult, shift)) + off
        expected.append(max(-128, min(127, value)))
    return rows, expected


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=pytest.mark.qemu),
                                    pytest.param("cortex-m3", marks=pytest.mark.qemu)])
def test_requantisation_fast_and_exact_equal_tflite(target, tmp_path):
    need_toolchain(target)
    rows, expected = _requant_cases(np.random.default_rng(7), 400)
    body = ",\n".join("    {" + ", ".join(str(v) for v in r) + "}" for r in rows)
    (tmp_path / "rq.c").write_text(_REQUANT_PROGRAM % body)
    elf = build_elf(target, [tmp_path / "rq.c"], [templates_dir() / "runtime"], tmp_path / "b")
    result = run_elf(target, elf, 120, icount=False)
    got = [int(v) for v in result.stdout.split()]
    assert got == expected


def test_fast_requantisation_is_chosen_only_where_it_is_exact():
    bound = np.array([1000, 2000])
    assert layout.requant([1, 2], [1 << 30, 1 << 30], [-5, -1], 3, bound).mode == layout.FAST
    for shifts in ([-5, 0], [-5, 2], [-24, -5]):  # a zero, left or too wide right shift
        assert layout.requant([1, 2], [1 << 30] * 2, shifts, 3, bound).mode == layout.EXACT
    assert layout.requant([1, 2], [1 << 30] * 2, [-5, -5], 3,
                          np.array([10, 1 << 30])).mode == layout.EXACT
    fast = layout.requant([7], [1 << 30], [-4], -3, np.array([10]))
    assert fast.table[0].tolist() == [7, 1 << 30, (1 << 3) + (-3 << 4), 4]


def test_layouts_put_weights_in_the_order_the_loops_read_them():
    w = np.arange(1, 3 * 5 + 1, dtype=np.int8).reshape(3, 5)  # 3 outputs, 5 inputs
    words = layout.pointwise_weights(w).view(np.int8).reshape(2, 2, 2, 4)  # pair, block, oc
    assert words[0, 0, 0].tolist() == [1, 2, 3, 4] and words[0, 0, 1].tolist() == [6, 7, 8, 9]
    assert words[0, 1, 0].tolist() == [5, 0, 0, 0] and words[1, 0, 1].tolist() == [0] * 4
    dw = np.arange(1, 9 * 5 + 1, dtype=np.int8).reshape(3, 3, 5)
    rq = layout.requant(np.arange(5), [1 << 30] * 5, [-3] * 5, 0, np.ones(5))
    stream = layout.depthwise_stream(dw, rq, input_offset=2)
    taps = stream[8:8 + 18].view(np.int16).reshape(9, 4)
    assert taps[0].tolist() == [1, 3, 2, 4]  # (c0, c2), (c1, c3) of tap (0, 0)
    folded = stream[4:8].tolist()
    assert folded == [c + 2 * int(dw[:, :, c].astype(int).sum()) for c in range(4)]
    tail = stream[8 + 18 + 12:]
    assert tail[0] == 4 and tail[1] == 4 + 2 * int(dw[:, :, 4].astype(int).sum())
    assert tail[5:].view(np.int16)[:9].tolist() == dw[:, :, 4].reshape(-1).tolist()
