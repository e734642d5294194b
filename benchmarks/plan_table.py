"""Print the arena table: layer by layer, the per-unit plan, depth-first segments, streamed.

Run on demand: `python benchmarks/plan_table.py [--shared ../shared/models] [--zoo]`.
Bytes come from the planner (portable kernels; input and output counted; a streamed
input counts its ring of rows), the TFLite Micro figure from its recording allocator,
the time is the wall time of planning the segment plan. Columns:
  layer B      every tensor materialised (the baseline)
  per-unit B   scheme bottleneck: each fused unit alone, whole input and output tensors
  segment B    scheme auto, resident input: chains of units run depth-first
  lower B      the segment plan's lower bound (most bytes live at one step)
  streamed B   scheme auto, the input fed row by row (mnv2_feed_rows)
  s-lower B    the streamed plan's lower bound
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mnv2gen.errors import MnvError
from mnv2gen.loader import load_model
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.planner.plan import plan_model
from mnv2gen.tflm import tflm_arena_bytes, tflm_available

ZOO = [("mobilenet-v2", 0.35, 96), ("mobilenet-v2", 0.35, 128), ("mobilenet-v2", 0.5, 160),
       ("mobilenet-v2", 1.0, 224), ("mobilenet-v2", 1.4, 224), ("mobilenet-v1", 0.25, 96)]
COLUMNS = ("layer B", "per-unit B", "segment B", "lower B", "streamed B", "s-lower B",
           "TFLM B")


def _cell(value) -> str:
    return f"{value:>10,}" if isinstance(value, int) else f"{'-':>10}"


def _row(name: str, graph, model_bytes: bytes | None) -> str:
    core = integer_core(graph)
    layer = plan_model(core, "layer")
    per_unit = plan_model(core, "bottleneck")
    start = time.perf_counter()
    segment = plan_model(core)
    seconds = time.perf_counter() - start
    try:
        streamed = plan_model(core, input_mode="streamed")
        s_peak, s_lower = streamed.peak_bytes, streamed.lower_bound_bytes
    except MnvError:
        s_peak = s_lower = None
    tflm = tflm_arena_bytes(model_bytes) if model_bytes and tflm_available() else None
    cells = (layer.peak_bytes, per_unit.peak_bytes, segment.peak_bytes,
             segment.lower_bound_bytes, s_peak, s_lower, tflm)
    ratio = max(segment.peak_bytes / segment.lower_bound_bytes,
                s_peak / s_lower if s_peak else 0)
    return (f"| {name:<56} | " + " | ".join(_cell(c) for c in cells)
            + f" | {segment.peak_bytes / layer.peak_bytes:>6.3f} | {ratio:>6.3f} | "
            f"{seconds:>6.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                / "models"))
    parser.add_argument("--zoo", action="store_true", help="also synthesized models")
    args = parser.parse_args()
    print(f"| {'model':<56} | " + " | ".join(f"{c:>10}" for c in COLUMNS)
          + f" | {'seg/lay':>6} | {'p/low':>6} | {'plan s':>6} |")
    print(f"|{'-' * 58}|" + "|".join("-" * 12 for _ in COLUMNS) + f"|{'-' * 8}|{'-' * 8}|"
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
    print("p/low: the larger of peak / lower bound of the segment and the streamed plan.")


if __name__ == "__main__":
    main()
