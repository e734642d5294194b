"""The TFLite Micro cross-checks run in a child process, bounded in memory and time.

TFLite Micro is optional information (`plan`'s `tflm_arena_bytes`, `run --check-tflm`):
its C++ side aborts the whole process on some models (a failed TF_LITE_ENSURE), prints
diagnostics to the terminal and sizes its arena up front. So the parent never loads it:
a child (`python -m mnv2gen.tflm_isolated`) does the work with an address-space limit and
a timeout, its output is captured, and any failure becomes a one-line reason instead of a
crash, a stray message or a failed command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnv2gen.errors import one_line

ARENA_FLOOR_BYTES = 16 << 20
ARENA_CAP_BYTES = (1 << 31) - 1  # TFLM's arena size is a C int
DEFAULT_TIMEOUT_S = 120.0
#: address space the child may use beyond its arena (Python, NumPy, TFLM, the model)
HEADROOM_BYTES = 2 << 30
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


@dataclass(frozen=True)
class TflmOutcome:
    """What a child run gave: `value` on success, else None and a one-line `reason`."""

    value: object | None
    reason: str = ""


def arena_size_for(model_bytes: int, layer_by_layer_bytes: int = 0) -> int:
    """Return the arena handed to TFLite Micro: room for every tensor materialised (twice
    mnv2gen's layer-by-layer arena, TFLM plans about the same) plus its own buffers,
    at least 16 MiB, at most what a C int holds."""
    wanted = max(ARENA_FLOOR_BYTES, 10 * model_bytes, 2 * layer_by_layer_bytes + (1 << 20))
    return min(wanted, ARENA_CAP_BYTES)


def _reason(done: subprocess.CompletedProcess | None, timeout_s: float, doing: str) -> str:
    if done is None:
        return f"TFLite Micro did not finish within {timeout_s:g} s"
    text = (done.stdout or "") + (done.stderr or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()
             and not ln.startswith("[RecordingMicroAllocator]")]
    detail = next((ln for ln in lines if "error" in ln.lower() or "not true" in ln
                   or "failed" in ln.lower()), lines[-1] if lines else "")
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        what = f"TFLite Micro crashed ({name}) {doing}"
    else:
        what = f"TFLite Micro failed {doing}"
    return one_line(f"{what}: {detail[:200]}" if detail else what)


def _child(args: list[str], arena: int, timeout_s: float
           ) -> tuple[subprocess.CompletedProcess | None, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "mnv2gen.tflm_isolated", str(arena + HEADROOM_BYTES), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return None, _reason(None, timeout_s, "")
    doing = "allocating the model" if args[0] == "arena" else "running the model"
    return done, "" if done.returncode == 0 else _reason(done, timeout_s, doing)


def arena_bytes(model: bytes, layer_by_layer_bytes: int = 0,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> TflmOutcome:
    """Return TFLite Micro's recorded total arena for the model ("Arena allocation total N
    bytes" of its RecordingMicroAllocator, after allocating the tensors), or None with the
    reason: not installed, the model does not load, a crash, the time limit."""
    from mnv2gen.tflm import tflm_available

    if not tflm_available():
        return TflmOutcome(None, "the tflite-micro package is not installed")
    arena = arena_size_for(len(model), layer_by_layer_bytes)
    with tempfile.TemporaryDirectory(prefix="mnv2gen-tflm-") as work:
        path = Path(work) / "model.tflite"
        path.write_bytes(model)
        done, reason = _child(["arena", str(path), str(arena)], arena, timeout_s)
    if reason:
        return TflmOutcome(None, reason)
    match = _TOTAL.search(done.stdout + done.stderr)
    if match is None:
        return TflmOutcome(None, "TFLite Micro reported no arena total")
    return TflmOutcome(int(match.group(1)))


def run_outputs(model: bytes, inputs: Sequence[np.ndarray], layer_by_layer_bytes: int = 0,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> TflmOutcome:
    """Return TFLite Micro's outputs (a list of arrays, model order) for one inference on
    `inputs`, or None with the reason it could not run."""
    from mnv2gen.tflm import tflm_available

    if not tflm_available():
        return TflmOutcome(None, "the tflite-micro package is not installed")
    arena = arena_size_for(len(model), layer_by_layer_bytes)
    with tempfile.TemporaryDirectory(prefix="mnv2gen-tflm-") as work:
        folder = Path(work)
        (folder / "model.tflite").write_bytes(model)
        for i, array in enumerate(inputs):
            np.save(folder / f"input_{i}.npy", np.ascontiguousarray(array), allow_pickle=False)
        done, reason = _child(["run", str(folder), str(arena), str(len(inputs))], arena,
                              timeout_s)
        if reason:
            return TflmOutcome(None, reason)
        count = json.loads((folder / "outputs.json").read_text())["outputs"]
        return TflmOutcome([np.load(folder / f"output_{i}.npy", allow_pickle=False)
                            for i in range(count)])


def _unbuffered_c_stdout() -> None:
    """Make C's stdout unbuffered, so TFLite Micro's last words survive an abort()."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.setvbuf(ctypes.c_void_p.in_dll(libc, "stdout"), None, 2, 0)  # _IONBF
    except (OSError, ValueError, AttributeError):
        pass


def _worker(argv: list[str]) -> int:
    """Child entry: `LIMIT arena MODEL ARENA` or `LIMIT run FOLDER ARENA N_INPUTS`."""
    import resource

    limit = int(argv[0])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _unbuffered_c_stdout()
    from mnv2gen.tflm import _interpreter, run_tflm

    if argv[1] == "arena":
        interpreter = _interpreter(Path(argv[2]).read_bytes(), int(argv[3]))
        interpreter.print_allocations()
        return 0
    folder, arena, count = Path(argv[2]), int(argv[3]), int(argv[4])
    inputs = [np.load(folder / f"input_{i}.npy", allow_pickle=False) for i in range(count)]
    outputs = run_tflm((folder / "model.tflite").read_bytes(), inputs, arena)
    for i, array in enumerate(outputs):
        np.save(folder / f"output_{i}.npy", array, allow_pickle=False)
    (folder / "outputs.json").write_text(json.dumps({"outputs": len(outputs)}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_worker(sys.argv[1:]))
    except Exception as exc:  # the parent reads this line as the reason
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
