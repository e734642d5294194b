"""Print instructions per inference on a target: layer by layer vs the plans.

Run on demand: `python benchmarks/plans_table.py [--target cortex-m7]
[--kernels generated|portable|cmsis-nn] [--shared ../shared/models] [--zoo] [models...]`.
Every schedule of a model is built and run in QEMU in the same invocation (-icount,
SysTick: instruction counts, not cycles), each checked bit-exact against the reference
on the same input: the layer-by-layer baseline, the per-unit plan (scheme bottleneck),
the segment plan (scheme auto, resident input) and the streamed plan (the input fed
with mnv2_feed_rows; the count is of the run that feeds the whole image in one call).
Ratios are to layer by layer, same kernels, same run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnv2gen.errors import MnvError
from mnv2gen.inputs import random_inputs
from mnv2gen.loader import load_model
from mnv2gen.pipeline import compile_graph
from mnv2gen.verify import verify

PLANS = (("layer", "layer", "resident"), ("per-unit", "bottleneck", "resident"),
         ("segment", "auto", "resident"), ("streamed", "auto", "streamed"))
ZOO = [("mobilenet-v2", 0.35, 96), ("mobilenet-v2", 1.0, 224), ("mobilenet-v1", 0.25, 96)]


def _measure(graph, target: str, kernels: str, scheme: str, mode: str, inputs):
    try:
        return verify(compile_graph(graph, target, kernels, scheme=scheme, input_mode=mode),
                      inputs)
    except MnvError as exc:
        return {"error": exc.message}


def _line(name: str, graph, args) -> str:
    inputs = [random_inputs(graph, 0)]
    runs = {label: _measure(graph, args.target, args.kernels, scheme, mode, inputs)
            for label, scheme, mode in PLANS}
    base = runs["layer"].get("instructions")
    cells, exact = [], True
    for label, _, _ in PLANS:
        r = runs[label]
        if "error" in r:
            cells.append(f"{'-':>14} {'-':>6} {'-':>9}")
            continue
        exact &= r["bit_exact"]
        ratio = r["instructions"] / base if base else float("nan")
        cells.append(f"{r['instructions']:>14,} {ratio:>6.3f} {r['peak_bytes']:>9,}")
    return f"| {name[:44]:<44} | " + " | ".join(cells) + f" | {'yes' if exact else 'NO':<5} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--kernels", default="portable",
                        choices=["generated", "portable", "cmsis-nn"])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                / "models"))
    parser.add_argument("--zoo", action="store_true", help="also synthesized models")
    parser.add_argument("models", nargs="*", help="model files (default: the shared models)")
    args = parser.parse_args()
    paths = [Path(p) for p in args.models] or sorted((Path(args.shared) / "tflite")
                                                      .glob("*.tflite"))
    print(f"target {args.target}, {args.kernels} kernels; instruction counts from QEMU -icount "
          "(not cycles); per plan: instructions, ratio to layer by layer, arena bytes")
    print(f"| {'model':<44} | " + " | ".join(f"{label + ' instr':>14} {'ratio':>6} "
                                              f"{'arena B':>9}" for label, _, _ in PLANS)
          + " | exact |")
    print(f"|{'-' * 46}|" + "|".join("-" * 33 for _ in PLANS) + "|-------|")
    for path in paths:
        print(_line(path.stem, load_model(path), args), flush=True)
    if args.zoo:
        from mnv2gen.frontend.tflite import load_tflite
        from mnv2gen.passes import run_passes
        from mnv2gen.zoo import synthesize_tflite

        for arch, alpha, res in ZOO:
            data = synthesize_tflite(arch, alpha, res, 1000, 0)
            graph = run_passes(load_tflite(data, label=f"{arch}_{alpha}_{res}"))
            print(_line(f"zoo {arch} {alpha}/{res}", graph, args), flush=True)


if __name__ == "__main__":
    main()
