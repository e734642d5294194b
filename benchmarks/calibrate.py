"""Measure synthesized models in QEMU and fit targets/calibration.toml.

    python benchmarks/calibrate.py [--target T]... [--kernels generated|portable|cmsis-nn]...
        [--cmsis-nn PATH] [--data DIR] [--jobs N] [--shared DIR] [--no-write]

For every target and kernel backend: build each model of `calibration_models.py` with the
verify machinery, run it in QEMU with per-step instruction counts (-icount, SysTick:
instruction counts, not cycles), measure the library's code bytes with arm-none-eabi-size,
then fit by non-negative least squares
  - instructions of a plan step = sum of coefficient x work count (estimate/features.py),
    every step weighted by 1 / its model's total, so each model counts the same;
  - code bytes = sum of coefficient x code feature.
The shared models (../shared/models/tflite) are then measured and estimated, and the
signed error per model is stored next to the coefficients: `mnv2gen estimate` reports it.
Measurements are cached in --data (JSON lines keyed by model, target, backend and a hash
of the code generator, planner and runtime sources), so a refit after an interrupted or
partial run measures only what is missing. Rerun after changing kernels, codegen or the
planner's chunking; the shipped file says when it was measured. The generated kernels'
tables (what `mnv2gen estimate` prices by default on those targets):
    python benchmarks/calibrate.py --kernels generated --target cortex-m7 \
        --target cortex-m4 --target cortex-m3 --target stm32f405
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration_io import (  # noqa: E402
    describe_run,
    fingerprint,
    load_cache,
    previous_fits,
    write,
)
from calibration_models import calibration_specs  # noqa: E402

from mnv2gen.estimate.calibration import FILE  # noqa: E402
from mnv2gen.estimate.features import CODE_FEATURES, FEATURES  # noqa: E402

DEFAULT_TARGETS = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m55", "stm32f405", "cortex-m0",
                   "cortex-m33")
# the shared models' folder: $MNV2GEN_SHARED_MODELS (as the tests), else ../shared/models
SHARED = Path(os.environ.get("MNV2GEN_SHARED_MODELS") or ROOT.parent / "shared" / "models")


def measure_one(job: dict) -> dict:
    """Return the measurement record of one (model, target, kernels) job (runs in a worker)."""
    from calibration_models import Spec

    from mnv2gen.estimate.codesize import measure_code_bytes
    from mnv2gen.estimate.features import code_features, plan_features
    from mnv2gen.estimate.measure import measure
    from mnv2gen.loader import load_model
    from mnv2gen.toolchain import load_target

    if job["path"]:
        graph = load_model(job["path"])
    else:
        graph = Spec(job["model"], job["kind"], tuple(job["args"])).build()
    # a target with a [calibration] table runs on the same core with larger memories
    target = load_target(job["target"]).for_calibration()
    result = measure(graph, target, job["kernels"], job["cmsis_nn"], profile=True)
    record = {k: job[k] for k in ("model", "target", "kernels", "fingerprint")}
    if "error" in result:
        return {**record, "error": result["error"]}
    plan = result["plan"]
    code = measure_code_bytes(graph, plan, plan_model_baseline(plan), target, job["kernels"],
                              job["cmsis_nn"] or "")
    return {**record, "instructions": result["instructions"],
            "bit_exact": result["bit_exact"],
            "steps": [{"features": f, "instructions": s["instructions"]}
                      for f, s in zip(plan_features(plan), result["steps"], strict=True)],
            "code_bytes": code, "code_features": code_features(plan)}


def plan_model_baseline(plan):
    """Return the layer-by-layer plan beside `plan` (code generation reports it)."""
    from mnv2gen.planner.plan import plan_model

    return plan_model(plan.graph, "layer", plan.kernel_set)


def nnls(a: np.ndarray, b: np.ndarray, iterations: int = 500) -> np.ndarray:
    """Return x >= 0 minimising |a x - b| (Lawson and Hanson's active-set method)."""
    n = a.shape[1]
    x, passive = np.zeros(n), np.zeros(n, bool)
    for _ in range(iterations):
        gradient = a.T @ (b - a @ x)
        if passive.all() or gradient[~passive].max(initial=0) <= 1e-10:
            break
        passive[np.argmax(np.where(passive, -np.inf, gradient))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            bad = passive & (z <= 0)
            alpha = np.min(x[bad] / (x[bad] - z[bad]))
            x += alpha * (z - x)
            passive &= x > 1e-12
    return x


def fit(rows: list[tuple[dict, float, float]], names: tuple[str, ...]) -> dict[str, float]:
    """Return non-negative coefficients per name fitting rows of (counts, value, weight)."""
    a = np.array([[r[0][k] for k in names] for r in rows], dtype=np.float64)
    b = np.array([r[1] for r in rows], dtype=np.float64)
    w = np.array([r[2] for r in rows], dtype=np.float64)
    scale = np.maximum(np.abs(a).max(axis=0), 1.0)
    x = nnls(a * w[:, None] / scale, b * w) / scale
    return {k: float(v) for k, v in zip(names, x, strict=True) if v > 0}


def predict(coefficients: dict[str, float], counts: dict) -> float:
    """Return the sum of coefficient x count."""
    return sum(coefficients.get(k, 0.0) * v for k, v in counts.items())


def run_jobs(jobs: list[dict], cache: Path, workers: int) -> None:
    """Measure `jobs` in parallel, appending each record to `cache` as it completes."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool, \
            cache.open("a") as out:
        futures = {pool.submit(measure_one, job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            record = future.result()
            out.write(json.dumps(record) + "\n")
            out.flush()
            status = record.get("error") or f"{record['instructions']:,} instructions"
            print(f"  {record['model']}: {status}", flush=True)


def calibrate_pair(target: str, kernels: str, args, stamp: str) -> dict | None:
    """Measure what is missing, fit, check on the shared models; return the TOML entry."""
    cache = Path(args.data) / f"{target}_{kernels}.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    specs = calibration_specs()
    shared = sorted((Path(args.shared) / "tflite").glob("*.tflite"))
    if not shared:
        sys.exit(f"no shared models in {args.shared}/tflite: pass --shared DIR or set "
                 "MNV2GEN_SHARED_MODELS")
    records = load_cache(cache, None if args.reuse_stale else stamp)
    base = {"target": target, "kernels": kernels, "cmsis_nn": args.cmsis_nn,
            "fingerprint": stamp}
    jobs = [{**base, "model": s.name, "kind": s.kind, "args": list(s.args), "path": None}
            for s in specs if s.name not in records]
    jobs += [{**base, "model": p.stem, "kind": "file", "args": [], "path": str(p)}
             for p in shared if p.stem not in records]
    print(f"{target} {kernels}: {len(jobs)} models to measure", flush=True)
    run_jobs(jobs, cache, args.jobs)
    records = load_cache(cache, None if args.reuse_stale else stamp)
    train = [records[s.name] for s in specs if "error" not in records.get(s.name, {"error": 1})]
    like = dict(v.split("=") for v in args.like).get(target)
    if like and (like, kernels) in args.fitted:
        # The same compiler flags make the same code: reuse that target's coefficients
        # (fitted on every calibration model, not only those that fit this target's
        # memory) and check them on this target's own measurements.
        coefficients, code = args.fitted[(like, kernels)]
        origin = like
    elif len(train) >= 10:
        rows = [(step["features"], step["instructions"], 1.0 / r["instructions"])
                for r in train for step in r["steps"]]
        coefficients = fit(rows, FEATURES)
        code = fit([(r["code_features"], r["code_bytes"], 1.0 / r["code_bytes"])
                    for r in train], CODE_FEATURES)
        origin = None
    else:
        print(f"{target} {kernels}: only {len(train)} models measured; not fitted")
        return None
    args.fitted[(target, kernels)] = (coefficients, code)

    def total(r):
        return sum(predict(coefficients, s["features"]) for s in r["steps"])

    measured = train + [records[p.stem] for p in shared
                        if "error" not in records.get(p.stem, {"error": 1})]
    own = train if origin is None else measured
    fit_errors = [100 * (total(r) / r["instructions"] - 1) for r in own]
    code_errors = [100 * (predict(code, r["code_features"]) / r["code_bytes"] - 1)
                   for r in measured]
    shared_errors = {p.stem: round(100 * (total(records[p.stem])
                                          / records[p.stem]["instructions"] - 1), 2)
                     for p in shared if "error" not in records.get(p.stem, {"error": 1})}
    borrowed = f" (coefficients of {origin})" if origin else ""
    print(f"{target} {kernels}: {len(train)} models{borrowed}, fit error max "
          f"{max(map(abs, fit_errors)):.1f} %, code table max "
          f"{max(map(abs, code_errors)):.1f} %, shared models {shared_errors}", flush=True)
    entry = {"measured": describe_run(kernels, args.cmsis_nn), "models": len(own),
             "fit_error_pct": round(max(map(abs, fit_errors)), 2),
             "code_error_pct": round(max(map(abs, code_errors)), 2),
             "instructions": {k: round(v, 6) for k, v in coefficients.items()},
             "code_bytes": {k: round(v, 2) for k, v in code.items()},
             "shared_error_pct": shared_errors}
    if origin:
        entry["coefficients_from"] = origin
    return entry


def main() -> None:
    """Calibrate the requested targets and backends; update targets/calibration.toml."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", help="default: the Cortex-M targets")
    parser.add_argument("--kernels", action="append",
                        choices=["generated", "portable", "cmsis-nn"])
    parser.add_argument("--cmsis-nn", default=None, help="CMSIS-NN checkout (cmsis-nn only)")
    parser.add_argument("--data", default="/tmp/mnv2gen-calibration",
                        help="cache of measurements (JSON lines)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel QEMU runs")
    parser.add_argument("--shared", default=str(SHARED), help="the shared models folder")
    parser.add_argument("--no-write", action="store_true", help=f"do not update targets/{FILE}")
    parser.add_argument("--like", action="append", default=["stm32f405=cortex-m4"],
                        help="T=U: T compiles to the same code as U: use U's coefficients "
                             "and check them on T's measurements")
    parser.add_argument("--reuse-stale", action="store_true",
                        help="fit on cached measurements of older code too (experiments only)")
    args = parser.parse_args()
    args.fitted = previous_fits(ROOT / "targets" / FILE)
    stamp = fingerprint()
    entries = {}
    for kernels in args.kernels or ["portable"]:
        if kernels == "cmsis-nn" and not args.cmsis_nn:
            parser.error("--kernels cmsis-nn needs --cmsis-nn PATH")
        for target in args.target or DEFAULT_TARGETS:
            entry = calibrate_pair(target, kernels, args, stamp)
            if entry:
                entries[(target, kernels)] = entry
    if entries and not args.no_write:
        write(ROOT / "targets" / FILE, entries)
        print(f"wrote targets/{FILE}")


if __name__ == "__main__":
    main()
