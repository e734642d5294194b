"""Print the arena table: layer-by-layer vs mnv2gen's plan vs TFLite Micro, per model.

Run on demand: `python benchmarks/plan_table.py [--shared ../shared/models] [--zoo]`.
Bytes come from the planner (portable kernels; input and output counted), the TFLite
Micro figure from its recording allocator, and the time is the wall time of planning.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mnv2gen.loader import load_model
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.planner.plan import plan_model
from mnv2gen.tflm import tflm_arena_bytes, tflm_available

ZOO = [("mobilenet-v2", 0.35, 96), ("mobilenet-v2", 0.35, 128), ("mobilenet-v2", 0.5, 160),
       ("mobilenet-v2", 1.0, 224), ("mobilenet-v2", 1.4, 224), ("mobilenet-v1", 0.25, 96)]


def _row(name: str, graph, model_bytes: bytes | None) -> str:
    core = integer_core(graph)
    start = time.perf_counter()
    plan = plan_model(core)
    seconds = time.perf_counter() - start
    layer = plan_model(core, "layer")
    tflm = tflm_arena_bytes(model_bytes) if model_bytes and tflm_available() else None
    tflm_text = f"{tflm:>10,}" if tflm else f"{'-':>10}"
    ratio_tflm = f"{plan.peak_bytes / tflm:>7.3f}" if tflm else f"{'-':>7}"
    return (f"| {name:<58} | {layer.peak_bytes:>10,} | {plan.peak_bytes:>10,} | "
            f"{plan.lower_bound_bytes:>10,} | {tflm_text} | "
            f"{plan.peak_bytes / layer.peak_bytes:>7.3f} | {ratio_tflm} | {seconds:>6.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                / "models"))
    parser.add_argument("--zoo", action="store_true", help="also synthesized models")
    args = parser.parse_args()
    print(f"| {'model':<58} | {'layer B':>10} | {'plan B':>10} | {'lower B':>10} | "
          f"{'TFLM B':>10} | {'p/layer':>7} | {'p/TFLM':>7} | {'plan s':>6} |")
    print(f"|{'-' * 60}|{'-' * 12}|{'-' * 12}|{'-' * 12}|{'-' * 12}|{'-' * 9}|{'-' * 9}|"
          f"{'-' * 8}|")
    for path in sorted((Path(args.shared) / "tflite").glob("*.tflite")):
        print(_row(path.stem, load_model(path), path.read_bytes()), flush=True)
    if args.zoo:
        from mnv2gen.frontend.tflite import load_tflite
        from mnv2gen.passes import run_passes
        from mnv2gen.zoo import synthesize_tflite

        for arch, alpha, res in ZOO:
            data = synthesize_tflite(arch, alpha, res, 1000, 0)
            graph = run_passes(load_tflite(data, label=f"{arch}_{alpha}_{res}"))
            print(_row(f"zoo {arch} {alpha}/{res} (1000 classes)", graph, data), flush=True)


if __name__ == "__main__":
    main()
