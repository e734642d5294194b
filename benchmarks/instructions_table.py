"""Print instructions per inference on a target: layer-by-layer schedule vs mnv2gen's plan.

Run on demand: `python benchmarks/instructions_table.py [--target cortex-m7]
[--kernels portable|cmsis-nn] [--shared ../shared/models]`. Both schedules of a model are
built and run in QEMU in the same invocation (-icount, SysTick: instruction counts, not
cycles), each checked bit-exact against the reference on the same input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnv2gen.inputs import random_inputs
from mnv2gen.loader import load_model
from mnv2gen.pipeline import compile_graph
from mnv2gen.verify import verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--kernels", default="portable", choices=["portable", "cmsis-nn"])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                / "models"))
    parser.add_argument("models", nargs="*", help="model files (default: the shared models)")
    args = parser.parse_args()
    paths = [Path(p) for p in args.models] or sorted((Path(args.shared) / "tflite")
                                                      .glob("*.tflite"))
    print(f"target {args.target}, {args.kernels} kernels; instruction counts from QEMU -icount "
          "(not cycles)")
    print(f"| {'model':<52} | {'layer instr':>14} | {'plan instr':>14} | {'ratio':>6} | "
          f"{'layer B':>10} | {'plan B':>10} | exact |")
    print(f"|{'-' * 54}|{'-' * 16}|{'-' * 16}|{'-' * 8}|{'-' * 12}|{'-' * 12}|-------|")
    for path in paths:
        graph = load_model(path)
        inputs = [random_inputs(graph, 0)]
        runs = {scheme: verify(compile_graph(graph, args.target, args.kernels, scheme=scheme),
                               inputs) for scheme in ("layer", "auto")}
        layer, plan = runs["layer"], runs["auto"]
        exact = "yes" if layer["bit_exact"] and plan["bit_exact"] else "NO"
        print(f"| {path.stem[:52]:<52} | {layer['instructions']:>14,} | "
              f"{plan['instructions']:>14,} | {plan['instructions'] / layer['instructions']:>6.3f}"
              f" | {layer['peak_bytes']:>10,} | {plan['peak_bytes']:>10,} | {exact:<5} |",
              flush=True)


if __name__ == "__main__":
    main()
