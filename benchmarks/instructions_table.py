"""Print instructions per inference: layer-by-layer CMSIS-NN vs mnv2gen's plan with CMSIS-NN,
with the portable kernels and with mnv2gen's generated kernels.

    python benchmarks/instructions_table.py [--target cortex-m4] [--target cortex-m7]
        [--cmsis-nn PATH] [--shared DIR] [--no-zoo] [MODEL ...]
    python benchmarks/instructions_table.py --per-layer MODEL [--target T] [--cmsis-nn PATH]

Every schedule of a model is built and run in QEMU in the same invocation (-icount,
SysTick: instruction counts, not cycles), each checked bit-exact against the reference on
the same seeded input. ratio = generated plan / layer-by-layer CMSIS-NN; instr/MAC of the
generated plan; text bytes = the library's flash besides its constant arrays
(mnv2gen.estimate.codesize: schedule, kernels, and the CMSIS-NN functions it links).
Models: the shared .tflite models and synthesized MobileNetV2 0.35/96 and a VWW-shaped
MobileNetV1 0.25/96 (3-channel input, 2 classes). Without a CMSIS-NN checkout
(--cmsis-nn or CMSIS_NN_PATH) the baseline is the portable kernels, marked as such.
--per-layer prints, per plan step, the instructions and instructions per MAC of the
layer-by-layer baseline (the same operators' steps summed) and of the generated plan.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnv2gen.estimate.codesize import can_measure, measure_code_bytes  # noqa: E402
from mnv2gen.estimate.features import executed_macs, step_features  # noqa: E402
from mnv2gen.inputs import random_inputs  # noqa: E402
from mnv2gen.loader import load_model  # noqa: E402
from mnv2gen.pipeline import compile_graph  # noqa: E402
from mnv2gen.planner.plan import SegmentPlan  # noqa: E402
from mnv2gen.planner.schedule import FusedUnit  # noqa: E402
from mnv2gen.stats import graph_macs  # noqa: E402
from mnv2gen.toolchain import load_target  # noqa: E402
from mnv2gen.verify import verify  # noqa: E402
from mnv2gen.zoo import synthesize  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def _models(args) -> list[tuple[str, object]]:
    paths = [Path(p) for p in args.models] or sorted((Path(args.shared) / "tflite")
                                                      .glob("*.tflite"))
    models = [(p.stem, load_model(p)) for p in paths]
    if not args.models and not args.no_zoo:
        models += [("zoo mobilenet-v2 0.35/96",
                    synthesize("mobilenet-v2", 0.35, 96, 1000, seed=0)),
                   ("zoo mobilenet-v1 0.25/96 (VWW shape)",
                    synthesize("mobilenet-v1", 0.25, 96, 2, seed=0))]
    return models


def _run(graph, target: str, kernels: str, cmsis: str, scheme: str, profile: bool = False):
    compiled = compile_graph(graph, target, kernels, cmsis or None, scheme=scheme)
    return compiled, verify(compiled, [random_inputs(graph, 0)], profile=profile)


def _text(graph, compiled, target: str) -> str:
    """Return the library's code bytes on `target` (formatted), or "-" without a toolchain."""
    tgt = load_target(target)
    if not can_measure(tgt):
        return "-"
    code = measure_code_bytes(graph, compiled.plan, compiled.baseline, tgt, compiled.kernels,
                              compiled.cmsis_nn_path)
    return f"{code:,}"


def table(args, target: str, models) -> None:
    base = "cmsis-nn" if args.cmsis_nn else "portable"
    print(f"\ntarget {target}; baseline {base} kernels; QEMU -icount instruction counts (not "
          "cycles), one seeded input, every run compared with the reference")
    head = (f"| {'model':<44} | {'layer ' + base:>15} | {'plan ' + base:>15} | "
            f"{'plan portable':>15} | {'plan generated':>15} | {'ratio':>5} | "
            f"{'instr/MAC':>9} | "
            f"{base + ' text B':>15} | {'generated text B':>16} | exact |")
    print(head)
    print("|" + "|".join("-" * len(cell) for cell in head.split("|")[1:-1]) + "|")
    for name, graph in models:
        _, layer = _run(graph, target, base, args.cmsis_nn, "layer")
        base_plan, plan = _run(graph, target, base, args.cmsis_nn, "auto")
        _, portable = _run(graph, target, "portable", "", "auto")
        gen_plan, gen = _run(graph, target, "generated", "", "auto")
        exact = all(r["bit_exact"] for r in (layer, plan, portable, gen))
        macs = graph_macs(gen_plan.core)
        ratio = gen["instructions"] / layer["instructions"]
        print(f"| {name[:44]:<44} | {layer['instructions']:>15,} | {plan['instructions']:>15,} | "
              f"{portable['instructions']:>15,} | {gen['instructions']:>15,} | {ratio:>5.3f}"
              f" | {gen['instructions'] / macs:>9.2f} | {_text(graph, base_plan, target):>15} | "
              f"{_text(graph, gen_plan, target):>16} | {'yes' if exact else 'NO':<5} |",
              flush=True)


def _ops(step) -> list:
    """Return the operators a plan step runs (a segment runs several units)."""
    units = step.units if isinstance(step, SegmentPlan) else (step.unit,)
    return [op for u in units for op in (u.ops if isinstance(u, FusedUnit) else (u.op,))]


def _per_mac(instructions: int, macs: int) -> str:
    return f"{instructions / macs:9.2f}" if macs else f"{'-':>9}"


def per_layer(args, target: str, path: str) -> None:
    graph = load_model(path)
    base = "cmsis-nn" if args.cmsis_nn else "portable"
    layer_c, layer = _run(graph, target, base, args.cmsis_nn, "layer", profile=True)
    gen_c, gen = _run(graph, target, "generated", "", "auto", profile=True)
    by_op = {up.unit.op.name: step["instructions"]
             for up, step in zip(layer_c.plan.units, layer["steps"], strict=True)}
    print(f"{Path(path).stem} on {target}: layer-by-layer {base} vs generated plan, per plan "
          "step (QEMU -icount instruction counts, not cycles)")
    print(f"| {'step':<28} | {'MACs':>11} | {'layer ' + base:>15} | {'instr/MAC':>9} | "
          f"{'generated':>13} | {'instr/MAC':>9} | {'ratio':>5} |")
    print(f"|{'-' * 30}|{'-' * 13}|{'-' * 17}|{'-' * 11}|{'-' * 15}|{'-' * 11}|{'-' * 7}|")
    for up, step in zip(gen_c.plan.units, gen["steps"], strict=True):
        ops = _ops(up)
        before = sum(by_op.get(op.name, 0) for op in ops)
        macs = executed_macs(step_features(gen_c.plan, up))
        kinds = "+".join(op.kind.value.split("_")[0].lower() for op in ops)
        label = f"{up.name} {kinds}" if not isinstance(up, SegmentPlan) else \
            f"{up.name} ({len(ops)} ops)"
        print(f"| {label[:28]:<28} | {macs:>11,} | {before:>15,} | {_per_mac(before, macs)} | "
              f"{step['instructions']:>13,} | {_per_mac(step['instructions'], macs)} | "
              f"{step['instructions'] / max(before, 1):>5.2f} |")
    print(f"total: {base} layer by layer {layer['instructions']:,}, generated plan "
          f"{gen['instructions']:,} ({gen['instructions'] / layer['instructions']:.3f}); "
          f"bit-exact: {layer['bit_exact'] and gen['bit_exact']} (profile hooks add a few "
          "instructions per step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", help="default: cortex-m4 and cortex-m7")
    parser.add_argument("--cmsis-nn", default=os.environ.get("CMSIS_NN_PATH", ""))
    parser.add_argument("--shared", default=str(SHARED))
    parser.add_argument("--no-zoo", action="store_true", help="only the model files")
    parser.add_argument("--per-layer", metavar="MODEL", help="one model, step by step")
    parser.add_argument("models", nargs="*", help="model files (default: the shared models)")
    args = parser.parse_args()
    targets = args.target or ["cortex-m4", "cortex-m7"]
    if args.per_layer:
        for target in targets:
            per_layer(args, target, args.per_layer)
        return
    models = _models(args)
    for target in targets:
        table(args, target, models)


if __name__ == "__main__":
    main()
