"""Compare `mnv2gen estimate`'s instruction estimate with QEMU on the shared real models.

    python benchmarks/estimate_accuracy.py [--target cortex-m7]
        [--kernels portable|generated|cmsis-nn] [--cmsis-nn PATH] [--shared ../shared/models]
        [--max-error 15] [MODEL ...]

For each model: the estimate (targets/calibration.toml applied to the plan `build` makes)
and the QEMU -icount instruction count of one inference of the generated code (random
input; instruction counts, not cycles), in the same run. Exits 1 when any |error| exceeds
--max-error percent (the acceptance bound of the estimate is 15 %).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnv2gen.estimate.calibration import calibration  # noqa: E402
from mnv2gen.estimate.features import total_features  # noqa: E402
from mnv2gen.estimate.measure import measure  # noqa: E402
from mnv2gen.estimate.memory import plan_memory  # noqa: E402
from mnv2gen.loader import load_model  # noqa: E402
from mnv2gen.passes.integer_core import integer_core  # noqa: E402
from mnv2gen.toolchain import load_target  # noqa: E402


def main() -> int:
    """Print the comparison table; return 1 when an error exceeds --max-error."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--kernels", default="portable",
                        choices=["portable", "generated", "cmsis-nn"])
    parser.add_argument("--cmsis-nn", default=os.environ.get("CMSIS_NN_PATH"))
    parser.add_argument("--shared", default=os.environ.get("MNV2GEN_SHARED_MODELS")
                        or str(ROOT.parent / "shared" / "models"))
    parser.add_argument("--max-error", type=float, default=15.0)
    parser.add_argument("models", nargs="*", help="model files (default: the shared models)")
    args = parser.parse_args()
    if args.kernels == "cmsis-nn" and not args.cmsis_nn:
        parser.error("--kernels cmsis-nn needs --cmsis-nn PATH or CMSIS_NN_PATH")
    calib = calibration(args.target, args.kernels)
    if calib is None:
        parser.error(f"targets/calibration.toml has no {args.target} {args.kernels} entry")
    paths = [Path(p) for p in args.models] or sorted((Path(args.shared) / "tflite")
                                                      .glob("*.tflite"))
    target = load_target(args.target)
    kernel_set = args.kernels if args.kernels in ("portable", "generated") else \
        target.kernel_set
    print(f"target {args.target}, {args.kernels} kernels; calibration measured "
          f"{calib.measured}")
    print("instructions per inference: estimate vs QEMU -icount count (not cycles)\n")
    print(f"| {'model':<52} | {'estimate':>14} | {'measured':>14} | {'error':>7} |")
    print(f"|{'-' * 54}|{'-' * 16}|{'-' * 16}|{'-' * 9}|")
    worst = 0.0
    for path in paths:
        graph = load_model(path)
        estimate = calib.instructions_for(total_features(
            plan_memory(integer_core(graph), kernel_set).plan))
        # a target with a [calibration] table (cortex-m0: 16 KiB) measures on the same core
        # with the enlarged memories calibrate.py used
        result = measure(graph, target.for_calibration(), args.kernels, args.cmsis_nn)
        if "error" in result:
            print(f"| {path.stem[:52]:<52} | {estimate:>14,} | {'-':>14} | {'-':>7} | "
                  f"{result['error']}")
            continue
        error = 100 * (estimate / result["instructions"] - 1)
        worst = max(worst, abs(error))
        print(f"| {path.stem[:52]:<52} | {estimate:>14,} | {result['instructions']:>14,} | "
              f"{error:>+6.1f}% |", flush=True)
    print(f"\nlargest |error|: {worst:.1f} % (bound {args.max_error:g} %)")
    return 1 if worst > args.max_error else 0


if __name__ == "__main__":
    sys.exit(main())
