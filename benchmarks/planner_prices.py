"""Measure the planner's instruction prices of the generated kernels on one target.

    python benchmarks/planner_prices.py [--target cortex-m7] [--shared DIR]

Every conv, depthwise and ADD layer of a few shared and synthesized models runs once
through its generated kernel instance (the code `build` emits) on the whole tensor, in
one QEMU program per model (-icount, SysTick: instruction counts, not cycles); 1x1 layers
also run as channel-group partial sums (MNV2_RQ_ACC, 3 groups) and their requantisation.
Per kernel kind the instructions are fitted as a x MACs + b x outputs + c (least squares,
relative errors, non-negative; c only for kinds measured on 20 calls or more); the printed
table is candidates.PRICES["generated"] (c, the per-call overhead, the median over the
kinds). The prices only rank chunkings of one unit against each other: measured totals
live in instructions_table.py.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibrate import nnls  # noqa: E402

from mnv2gen.codegen.consts import ConstPool  # noqa: E402
from mnv2gen.codegen.emit import _environment, templates_dir  # noqa: E402
from mnv2gen.codegen.generated import kernels  # noqa: E402
from mnv2gen.codegen.generated.instances import InstanceSet  # noqa: E402
from mnv2gen.loader import load_model  # noqa: E402
from mnv2gen.passes.integer_core import integer_core  # noqa: E402
from mnv2gen.toolchain import build_elf, run_elf  # noqa: E402
from mnv2gen.zoo import synthesize  # noqa: E402

SHARED = ("tflm_person_detect", "ei_fomo_balloon", "tinyengine_vww")
GROUPS = 3
KIND_OF_PRICE = {"pw": "pointwise", "dw": "depthwise", "conv": "conv", "add": "add",
                 "acc": "accumulate", "requant": "requantize"}


def _layer_calls(graph, op, pool, instances, n):
    """Return [(price kind, C call, macs, outputs)] for one layer on buffers x, y, acc."""
    kind = kernels.kind_of(graph, op)
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    outputs = y.num_elements
    if kind == "add":
        n = len(pool.arrays)
        c = kernels.add(graph, op, op.inputs[0], pool, f"l{n}")
        return [("add", f"{instances.name(c)}(x, x, y, {outputs}, {', '.join(c.arrays)});",
                 0, outputs)]
    if kind not in ("pw", "dw", "conv"):
        return []
    n = len(pool.arrays)
    macs = outputs * int(np.prod(graph.tensor(op.inputs[1]).shape[1:]))
    if kind == "pw":
        pixels = x.shape[1] * x.shape[2]
        c = kernels.pointwise(graph, op, pool, f"l{n}")
        calls = [("pw", f"{instances.name(c)}(x, y, {pixels}, {c.arrays[0]}, {c.out_c});",
                  macs, outputs)]
        in_c = x.shape[3]
        for g in range(GROUPS if in_c >= 4 * GROUPS else 0):
            lo, hi = g * in_c // GROUPS, (g + 1) * in_c // GROUPS
            a = kernels.pointwise(graph, op, pool, f"l{n}", inputs=(lo, hi), accumulate=True)
            calls.append(("acc", f"{instances.name(a)}(x, acc, {pixels}, {a.arrays[0]}, "
                                 f"{a.out_c});", macs * (hi - lo) // in_c, outputs))
        if len(calls) > 1:
            r = kernels.requant_acc(graph, op, pool, f"l{n}")
            calls.append(("requant", f"{instances.name(r)}(acc, y, {pixels}, "
                                     f"{r.arrays[0]});", 0, outputs))
        return calls
    c = (kernels.depthwise if kind == "dw" else kernels.conv)(graph, op, pool, f"l{n}")
    if kind == "dw":  # the filter is [1, kh, kw, C]: MACs per output are kh * kw
        macs = outputs * int(np.prod(graph.tensor(op.inputs[1]).shape[1:3]))
    return [(kind, f"{instances.name(c)}(x, {x.shape[1]}, {op.attrs.padding.top}, y, "
                   f"{y.shape[1]}, {c.arrays[0]});", macs, outputs)]


def measure(graph, target: str) -> list[tuple[str, int, int, int]]:
    """Return (price kind, instructions, MACs, outputs) of every call on one model."""
    core = integer_core(graph)
    pool, instances = ConstPool(), InstanceSet("mnv2_bk")
    calls, x_max, y_max = [], 1, 1
    for op in core.ops:
        layer = _layer_calls(core, op, pool, instances, "")
        if layer:
            calls += layer
            x_max = max(x_max, core.tensor(op.inputs[0]).num_elements)
            y_max = max(y_max, core.tensor(op.outputs[0]).num_elements)
    buffers = [f"static int8_t x[{x_max}] __attribute__((aligned(16)));",
               f"static int8_t y[{y_max}] __attribute__((aligned(16)));",
               f"static int32_t acc[{y_max}];"]
    body = "\n".join(f"    mnv2_counter_start();\n    {c}\n    printf(\"N {i} %lu\\n\", "
                     "(unsigned long)mnv2_counter_stop());" for i, (_, c, _, _) in
                     enumerate(calls))
    consts = "\n".join(f"static const {a.ctype} {a.symbol}[{a.values.size}] "
                       f"__attribute__((aligned(16))) = {{\n{a.body()}\n}};" for a in pool.arrays)
    source = ('#pragma GCC optimize("no-schedule-insns")\n#include <stdio.h>\n'
              '#include "mnv2_gen_kernels.h"\n#include "mnv2_harness.h"\n'
              f"{consts}\n{chr(10).join(buffers)}\n{instances.definitions(_environment())}\n"
              f"int main(void)\n{{\n{body}\n    return 0;\n}}\n")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "main.c").write_text(source)
        elf = build_elf(target, [Path(tmp) / "main.c"], [templates_dir() / "runtime"],
                        Path(tmp) / "b")
        result = run_elf(target, elf, 600)
    counts = {int(m[1]): int(m[2]) for m in re.finditer(r"N (\d+) (\d+)", result.stdout)}
    return [(kind, counts[i], macs, outputs)
            for i, (kind, _, macs, outputs) in enumerate(calls)]


def fit(rows, intercept: bool) -> tuple[float, float, float]:
    """Return (per MAC, per output, per call) fitting rows, by relative least squares (the
    per-call term only with `intercept`: a handful of calls cannot separate it)."""
    a = np.array([[macs, outputs, 1.0] for _, _, macs, outputs in rows], np.float64)
    a = a if intercept else a[:, :2]
    b = np.array([n for _, n, _, _ in rows], np.float64)
    w = 1.0 / b
    scale = np.maximum(np.abs(a).max(axis=0), 1.0)
    x = nnls(a * w[:, None] / scale, b * w) / scale
    return tuple(float(v) for v in (*x, 0.0)[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                / "models"))
    args = parser.parse_args()
    graphs = [load_model(p) for prefix in SHARED
              for p in sorted((Path(args.shared) / "tflite").glob(f"{prefix}*.tflite"))[:1]]
    graphs += [synthesize("mobilenet-v2", 0.35, 96, 10, seed=1),
               synthesize("mobilenet-v2", 0.5, 128, 10, seed=2)]
    rows = [row for graph in graphs for row in measure(graph, args.target)]
    print(f"generated kernels on {args.target}: instructions (QEMU -icount, not cycles) = "
          "a x MACs + b x outputs + c per call")
    table, overheads = {}, []
    for kind, price_kind in KIND_OF_PRICE.items():
        chosen = [r for r in rows if r[0] == kind]
        if not chosen:
            continue
        per_mac, per_out, per_call = fit(chosen, intercept=len(chosen) >= 20)
        errors = [100 * ((per_mac * m + per_out * o + per_call) / n - 1) for _, n, m, o in chosen]
        print(f"  {price_kind:<10} a={per_mac:.3f} b={per_out:.2f} c={per_call:.0f}  "
              f"({len(chosen)} calls, error {min(errors):+.1f} .. {max(errors):+.1f} %)")
        table[price_kind] = (round(per_mac, 2), round(per_out, 1))
        if len(chosen) >= 20:
            overheads.append(per_call)
    table["call"] = round(float(np.median(overheads)), -1)
    print(f"PRICES['generated'] = {table}")


if __name__ == "__main__":
    main()
