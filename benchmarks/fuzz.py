"""The long fuzz run: thousands of seeded mutants through inspect, plan and verify.

Run on demand: `python benchmarks/fuzz.py [--mutants 3000] [--seed 1] [--workers 2]
[--isolated] [--build] [--tflm] [--target host --kernels portable] [--shared
../shared/models | --no-shared] [--json report.json]`.

The corpus is tests/test_fuzz.py's (tests/fuzz_runner.corpus_seeds) scaled up, plus every
shared model (structural mutants only for those, to keep the run affordable). Each mutant
runs in a worker process (in-process CLI calls; `--isolated` runs every command as its own
`python -m mnv2gen` process instead, which also catches signals directly); a worker that
dies is reported as a crash of the mutant it was running. Prints mutants by seed model
and outcome and every rule violation; exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import multiprocessing
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzz_runner import Judged, Seed, corpus_seeds, mutants, run_in_folder  # noqa: E402

CI_MUTANTS = 230  # corpus_seeds(1.0) without the shared models


def _shared_seeds(shared: Path, count: int) -> list[Seed]:
    paths = [p for folder in (shared, shared / "family")
             for p in sorted((folder / "tflite").glob("*.tflite"))
             + sorted((folder / "onnx").glob("*qdq*.onnx"))]
    return [Seed(p.stem, p.read_bytes(), p.suffix, count) for p in paths]


def _run_all(corpus, workers: int, job) -> list[Judged]:
    """Return the judgement of every mutant; a dead worker marks its mutant as crashed."""
    results: dict[int, Judged] = {}
    pending = list(range(len(corpus)))
    context = multiprocessing.get_context("spawn")
    while pending:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(job, corpus[i]): i for i in pending}
            try:
                for future in concurrent.futures.as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    if len(results) % 100 == 0:
                        print(f"  {len(results)}/{len(corpus)}", file=sys.stderr, flush=True)
            except concurrent.futures.process.BrokenProcessPool:
                pass
        done = [i for i in pending if i in results]
        lost = [i for i in pending if i not in results]
        if lost and not done:  # nothing finished: the first lost mutant killed the worker
            results[lost[0]] = Judged(corpus[lost[0]].name, "crash",
                                      ["worker process died (signal or exit)"])
        pending = [i for i in lost if i not in results]
    return [results[i] for i in range(len(corpus))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--isolated", action="store_true")
    parser.add_argument("--build", action="store_true", help="also run `build` per mutant")
    parser.add_argument("--tflm", action="store_true", help="plan with the TFLM cross-check")
    parser.add_argument("--target", default="host", help="verify on this target")
    parser.add_argument("--kernels", default="portable", help="portable or cmsis-nn")
    parser.add_argument("--no-shared", action="store_true", help="synthesized models only")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "models")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mnv2gen-fuzz-seeds-"))
    shared = args.shared if (args.shared / "tflite").is_dir() and not args.no_shared else None
    seeds = corpus_seeds(args.mutants * 0.8 / CI_MUTANTS, work, None)
    big = []
    if shared is not None:
        big = _shared_seeds(shared, max(1, round(args.mutants * 0.2 / 20)))
        seeds += big
    corpus = list(mutants(seeds, args.seed, structural_only=tuple(s.name for s in big)))
    print(f"{len(corpus)} mutants of {len(seeds)} models, {args.workers} workers",
          file=sys.stderr)
    start = time.monotonic()
    job = partial(run_in_folder, isolated=args.isolated, build=args.build, tflm=args.tflm,
                  timeout_s=1200.0, target=args.target, kernels=args.kernels)
    judged = _run_all(corpus, args.workers, job)
    seconds = time.monotonic() - start

    stages = ("inspect", "plan", "verify", "build", "bit-exact", "crash")
    table = collections.defaultdict(collections.Counter)
    for j in judged:
        table[j.name.split("/")[0]][j.stage] += 1
    width = max(len(k) for k in table)
    print(f"{'seed model':<{width}} " + " ".join(f"{s:>9}" for s in stages) + "    total")
    for name, counts in table.items():
        print(f"{name:<{width}} " + " ".join(f"{counts[s]:>9}" for s in stages)
              + f" {sum(counts.values()):>8}")
    totals = collections.Counter(j.stage for j in judged)
    print(f"{'all':<{width}} " + " ".join(f"{totals[s]:>9}" for s in stages)
          + f" {len(judged):>8}")
    print("(stage = where a mutant was refused with exit 2; bit-exact = inspect, plan and "
          f"verify --target {args.target} --kernels {args.kernels} passed, 0 differing "
          f"bytes)\n{seconds:.0f} s wall")
    problems = [(j.name, p) for j in judged for p in j.problems]
    print(f"rule violations: {len(problems)}")
    for name, problem in problems:
        print(f"  {name}: {problem}")
    if args.json:
        args.json.write_text(json.dumps({
            "mutants": len(judged), "seconds": round(seconds, 1),
            "stages": dict(totals), "by_seed": {k: dict(v) for k, v in table.items()},
            "problems": [{"mutant": n, "problem": p} for n, p in problems]}, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
