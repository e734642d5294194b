"""Print the README's model table: every shared and family TFLite file, its operator set on
the device, arena bytes (plan, lower bound, TFLite Micro) and its verdicts.

Run on demand: `python benchmarks/family_table.py [--shared ../shared/models] [--verify]`.
Verdicts: "oracle" compares the reference with TFLite Micro on every operator output for
one seeded input (on the folded model where TFLM lacks an operator; LiteRT covers those in
tests/test_reference_litert.py); with --verify the generated C (portable kernels) is
compared with the reference on the host and, in QEMU, on Cortex-M7 (one input each; host
only above a 4 MiB arena). ONNX files are another table.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from mnv2gen import reference
from mnv2gen.errors import MnvError
from mnv2gen.frontend.tflite import load_tflite
from mnv2gen.frontend.tflite_writer import write_tflite
from mnv2gen.inputs import random_inputs
from mnv2gen.ir import Op
from mnv2gen.loader import load_model
from mnv2gen.passes import run_passes
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.pipeline import compile_graph
from mnv2gen.planner.plan import plan_model
from mnv2gen.tflm import run_tflm_op_outputs, tflm_arena_bytes
from mnv2gen.verify import verify

ARENA = 160 << 20


def _differing(graph, model: bytes, inputs) -> int:
    ours = reference.run_all(graph, inputs)
    theirs = run_tflm_op_outputs(model, inputs, ARENA)
    total = 0
    for op in graph.ops:
        a = np.ascontiguousarray(ours[op.outputs[0]]).reshape(-1)
        b = np.ascontiguousarray(theirs[op.source_index]).reshape(-1).astype(a.dtype)
        total += int(np.count_nonzero(a.view(np.uint8) != b.view(np.uint8)))
    return total


def oracle(path: Path) -> str:
    """Return the per-operator verdict of the reference against TFLite Micro."""
    raw = load_tflite(path)
    inputs = random_inputs(raw, 0)
    try:
        bad = _differing(raw, path.read_bytes(), inputs)
        where = "TFLM"
    except MnvError:
        passed = run_passes(raw)
        graph = passed.replace(ops=tuple(Op(o.kind, o.name, o.inputs, o.outputs, o.attrs, i)
                                         for i, o in enumerate(passed.ops)))
        bad = _differing(graph, write_tflite(graph), random_inputs(graph, 0))
        where = "TFLM (folded) + LiteRT"
    return f"= {where}" if bad == 0 else f"{bad} B differ from {where}"


def c_verdict(graph, target: str) -> str:
    """Return the C == reference verdict on one target (one input)."""
    compiled = compile_graph(graph, target, kernels="portable")
    if target != "host" and compiled.plan.peak_bytes > 4 << 20:
        return "host only"
    report = verify(compiled, [random_inputs(graph, 11)])
    return "exact" if report["bit_exact"] else f"{report['mismatched_bytes']} B differ"


def row(path: Path, run_c: bool) -> str:
    """Return one markdown row."""
    graph = load_model(path)
    core = integer_core(graph)
    kinds = Counter(op.kind.value for op in core.ops)
    ops = ", ".join(f"{k}x{v}" for k, v in sorted(kinds.items()))
    plan = plan_model(core)
    try:
        tflm = tflm_arena_bytes(path.read_bytes())
    except MnvError:
        tflm = None
    ratio = f"{plan.peak_bytes / tflm:.3f}" if tflm else "-"
    verdicts = [oracle(path)]
    verdicts += [c_verdict(graph, t) for t in ("host", "cortex-m7")] if run_c else ["-", "-"]
    return (f"| `{path.name}` | {ops} | {plan.peak_bytes:,} | "
            f"{plan.peak_bytes / plan.lower_bound_bytes:.3f} | "
            f"{f'{tflm:,}' if tflm else 'TFLM cannot run it'} | {ratio} | "
            + " | ".join(verdicts) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                / "models"))
    parser.add_argument("--verify", action="store_true", help="also run the generated C")
    args = parser.parse_args()
    shared = Path(args.shared)
    print("| file | operators on the device (after passes) | plan B | plan/lower bound | "
          "TFLM arena B | plan/TFLM | reference | C host | C Cortex-M7 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for folder in (shared / "tflite", shared / "family" / "tflite"):
        for path in sorted(folder.glob("*.tflite")):
            print(row(path, args.verify), flush=True)


if __name__ == "__main__":
    main()
