"""Run mnv2gen on one mutant and judge what it did (shared by tests/test_fuzz.py and
benchmarks/fuzz.py).

Per mutant: `inspect`, `plan` and, when the model plans, `verify --target host` (which
generates, compiles with the warnings-as-errors flags and runs the library, i.e. a build
plus a bit-exact check), optionally `build` too. Acceptable: exit 0, or exit 2 with
exactly an `error:` line and a `hint:` line; nothing with control characters, no
traceback, no exit 1 (a build that computes something else), 3 (a bug), signal or timeout,
and no output directory left behind by a failed build.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class Judged:
    """The outcome of one mutant: `stage` where it stopped ("inspect", "plan", "verify",
    "build" or "bit-exact"), and the rule violations seen (empty: acceptable)."""

    name: str
    stage: str = "inspect"
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    first_error: str = ""


class _Timeout(Exception):
    pass


def _in_process(args: list[str], timeout_s: float) -> tuple[int | None, str, str]:
    from mnv2gen.cli import main

    out, err = io.StringIO(), io.StringIO()

    def alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except _Timeout:
        code = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue()


def _subprocess(args: list[str], timeout_s: float) -> tuple[int | None, str, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    try:
        done = subprocess.run([sys.executable, "-m", "mnv2gen", *args], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return None, "", ""
    return (done.returncode, done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"))


def judge_output(command: str, code: int | None, out: str, err: str) -> list[str]:
    """Return the rule violations of one command's exit status and output."""
    problems = []
    if code is None:
        return [f"{command}: timed out"]
    if code < 0:
        problems.append(f"{command}: killed by signal {-code}")
    elif code not in (0, 2):
        problems.append(f"{command}: exit {code}: {err.strip()[:300]}")
    if "Traceback" in out + err:
        problems.append(f"{command}: traceback")
    if _CONTROL.search(out + err):
        problems.append(f"{command}: control characters in the output")
    if code == 2:
        lines = err.splitlines()
        if len(lines) != 2 or not lines[0].startswith("error: ") \
                or not lines[1].startswith("hint: "):
            problems.append(f"{command}: not one error line and one hint line: {err[:300]!r}")
    return problems


def run_mutant(mutant, work: Path, isolated: bool = False, build: bool = False,
               tflm: bool = False, timeout_s: float = 120.0, target: str = "host",
               kernels: str = "portable") -> Judged:
    """Return how mnv2gen handled `mutant` (a fuzz_mutator.Mutant) in folder `work`;
    `verify` (and `build`) run for `target` with `kernels`."""
    run = _subprocess if isolated else _in_process
    model = work / f"model{mutant.suffix}"
    model.write_bytes(mutant.data)
    judged = Judged(mutant.name)
    start = time.monotonic()
    # float ONNX seeds are quantised on the fly (inspect refuses them with a hint)
    calibrate = ["--calibrate", "random"] if mutant.name.startswith("float_") else []
    steps = [("inspect", ["inspect", str(model)]),
             ("plan", ["plan", str(model), "--tflm" if tflm else "--no-tflm", *calibrate]),
             ("verify", ["verify", str(model), "--target", target, "--kernels", kernels,
                         "--inputs", "2", *calibrate])]
    if calibrate:
        steps.pop(0)
    if build:
        steps.append(("build", ["build", str(model), "--target", target, "--kernels",
                                kernels, "-o", str(work / "out")]))
    for stage, args in steps:
        judged.stage = stage
        code, out, err = run(args, timeout_s)
        judged.problems += judge_output(stage, code, out, err)
        if stage == "build" and code != 0 and (work / "out").exists():
            judged.problems.append("build: a failed build left its output directory")
        if code != 0:
            judged.first_error = err.splitlines()[0] if err else ""
            break
    else:
        judged.stage = "bit-exact"
    judged.seconds = time.monotonic() - start
    return judged


@dataclass(frozen=True)
class Seed:
    """A model the mutants start from and how many mutants it gets."""

    name: str
    data: bytes
    suffix: str
    count: int


def corpus_seeds(scale: float, work: Path, shared: Path | None) -> list[Seed]:
    """Return the seed models: small synthesized ones (consistent models, `mnv2gen zoo`'s
    tiniest configurations, QDQ and QOperator ONNX models, int8 and uint8, when
    onnxruntime is installed) and, when `shared` holds the shared models, a handful of
    real ones. `scale` multiplies every
    seed's mutant count (1.0: the CI mix of about 250)."""
    import onnx_builders as ob
    from fuzz_models import consistent_tflite, tiny_qdq_onnx

    from mnv2gen.frontend.tflite_writer import write_tflite
    from mnv2gen.zoo import synthesize_tflite

    seeds = [("consistent_6x6", consistent_tflite(6, seed=1), ".tflite", 70),
             ("consistent_1x1", consistent_tflite(1, seed=2), ".tflite", 15),
             ("consistent_3x2", consistent_tflite(3, 2, seed=3), ".tflite", 15),
             ("zoo_v2_0.1_32", synthesize_tflite("mobilenet-v2", 0.1, 32, 3, 0), ".tflite", 30),
             ("zoo_v1_0.25_32", synthesize_tflite("mobilenet-v1", 0.25, 32, 2, 1), ".tflite",
              20)]
    qdq = tiny_qdq_onnx(work)
    if qdq is not None:
        seeds += [("tiny_qdq", qdq, ".onnx", 45),
                  ("tiny_qoperator", tiny_qdq_onnx(work, 5, qoperator=True), ".onnx", 40),
                  ("tiny_qoperator_uint8", tiny_qdq_onnx(work, 6, qoperator=True, uint8=True),
                   ".onnx", 15),
                  ("tiny_qdq_uint8", tiny_qdq_onnx(work, 7, uint8=True), ".onnx", 15)]
    seeds.append(("float_nchw_residual", ob.nchw_residual(seed=4).SerializeToString(), ".onnx",
                  20))
    seeds += [(f"family_{name}", write_tflite(graph), ".tflite", 6)
              for name, graph in _family_graphs()]
    if shared is not None:
        for path, count in (("tflite/tflm_person_detect_mbv1_0.25_96_int8.tflite", 8),
                            ("tflite/ei_fomo_balloon_mobilenet_v2_0.35_96_int8.tflite", 6),
                            ("onnx/st_nota_mobilenet_v2_0.35_224_flowers_qdq_int8.onnx", 6)):
            if (shared / path).is_file():
                seeds.append((Path(path).stem, (shared / path).read_bytes(),
                              Path(path).suffix, count))
    return [Seed(n, d, s, max(1, round(c * scale))) for n, d, s, c in seeds]


def _family_graphs():
    """Return (name, graph) of one small graph per family operator group (MUL/LOGISTIC,
    HARD_SWISH, SUB, resize, max pool, concatenation, arg max)."""
    import family_builders as fb

    from mnv2gen.ir import OpKind, Padding

    return [("squeeze_excite", fb.squeeze_excite()),
            ("mul_logistic", fb.binary_computed(OpKind.MUL, (1, 4, 4, 8))),
            ("hard_swish", fb.unary(OpKind.HARD_SWISH, (1, 5, 5, 8), fb.q(0.05, 2),
                                    fb.q(0.03, -20))),
            ("sub", fb.binary(OpKind.SUB, (1, 4, 4, 3), (3,), fb.q(0.05, 1), fb.q(0.02, 0),
                              fb.q(0.06, -2))),
            ("resize", fb.resize(OpKind.RESIZE_BILINEAR, (1, 3, 3, 4), 6, 6)),
            ("max_pool", fb.pool(OpKind.MAX_POOL_2D, (1, 6, 6, 4), (3, 3), (2, 2),
                                 Padding(0, 1, 0, 1), (3, 3))),
            ("concat", fb.concat([(1, 2, 2, 3), (1, 2, 2, 5)], 3,
                                 [fb.q(0.05, 0), fb.q(0.05, 0)], fb.q(0.05, 0))),
            ("arg_max", fb.arg_max((1, 10), 1))]


def mutants(seeds: list[Seed], seed: int, structural_only: tuple[str, ...] = ()):
    """Yield every seed's mutants (fuzz_mutator), deterministic in `seed`; seeds named in
    `structural_only` get no byte-level (weight) mutants, which keeps big models cheap."""
    from fuzz_mutator import onnx_mutants, tflite_mutants

    for i, s in enumerate(seeds):
        share = 1.0 if s.name in structural_only else None
        if s.suffix == ".onnx":
            yield from onnx_mutants(s.name, s.data, seed + i, s.count,
                                    **({"structural": share} if share else {}))
        else:
            yield from tflite_mutants(s.name, s.data, seed + i, s.count,
                                      **({"structural": share} if share else {}))


def run_in_folder(mutant, **options) -> Judged:
    """Return run_mutant(mutant, folder, **options) in a fresh temporary folder (for
    worker processes)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mnv2gen-fuzz-") as folder:
        return run_mutant(mutant, Path(folder), **options)
