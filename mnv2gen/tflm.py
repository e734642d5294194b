"""Optional cross-check against the TFLite Micro Python interpreter (`tflite-micro`).

The package ships Linux x86_64 wheels only, so it is imported lazily: mnv2gen works
without it and `tflm_available()` tells callers (and tests) whether it is there.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mnv2gen.errors import MnvError

_ARENA_FLOOR_BYTES = 16 << 20
_TOTAL_RE = re.compile(rb"Arena allocation total (\d+) bytes")


def _runtime():
    """Return the tflite-micro runtime module, or raise MnvError when it is not installed."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise MnvError("the tflite-micro package is not installed",
                       "pip install 'mnv2gen[tflm]' (Linux x86_64 only)") from exc
    return runtime


def tflm_available() -> bool:
    """Return True when the tflite-micro interpreter can be imported."""
    try:
        _runtime()
    except MnvError:
        return False
    return True


def _io_counts(model_bytes: bytes) -> tuple[int, int]:
    """Return (number of inputs, number of outputs) of the model's first subgraph."""
    import tflite

    subgraph = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    return subgraph.InputsLength(), subgraph.OutputsLength()


def _interpreter(model_bytes: bytes, arena_size: int | None, preserve: bool = False):
    """Return a TFLM interpreter with a generous arena (the allocator only uses what it needs).

    With `preserve`, every tensor keeps its own memory so it can be read after invoke.
    """
    runtime = _runtime()
    size = arena_size or max(_ARENA_FLOOR_BYTES, 10 * len(model_bytes))
    config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve
              else runtime.InterpreterConfig.kAllocationRecording)
    try:
        return runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=size,
                                              intrepreter_config=config)
    except Exception as exc:  # flatbuffers raises bare errors on corrupt data
        raise MnvError(f"TFLite Micro cannot load the model ({type(exc).__name__}: {exc})"
                       ) from None


def _invoke(interpreter, inputs: Sequence[np.ndarray]) -> None:
    """Set the inputs (in model order) and run one inference, raising MnvError on failure."""
    try:
        for index, array in enumerate(inputs):
            interpreter.set_input(np.ascontiguousarray(array), index)
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        raise MnvError(f"TFLite Micro failed to run the model: {exc}") from None


def run_tflm(model_bytes: bytes, inputs: Sequence[np.ndarray],
             arena_size: int | None = None) -> list[np.ndarray]:
    """Run one inference in TFLite Micro; return the output arrays in model order."""
    interpreter = _interpreter(model_bytes, arena_size)
    _invoke(interpreter, inputs)
    return [np.array(interpreter.get_output(i)) for i in range(_io_counts(model_bytes)[1])]


def run_tflm_op_outputs(model_bytes: bytes, inputs: Sequence[np.ndarray],
                        arena_size: int | None = None) -> list[np.ndarray]:
    """Run one inference; return the first output of every operator, in model order.

    Entry i belongs to operator i of the file (an IR op's `source_index`), so a
    reference can be compared with TFLM tensor by tensor, not only at the outputs.
    """
    import tflite

    interpreter = _interpreter(model_bytes, arena_size, preserve=True)
    _invoke(interpreter, inputs)
    subgraph = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    return [np.array(interpreter.GetTensor(int(subgraph.Operators(i).Outputs(0)), 0)
                     ["tensor_data"]) for i in range(subgraph.OperatorsLength())]


@dataclass(frozen=True)
class TflmComparison:
    """Outcome of comparing reference outputs with TFLite Micro's, byte for byte."""

    mismatched_bytes: int
    total_bytes: int
    tflm_outputs: tuple[np.ndarray, ...]

    @property
    def bit_exact(self) -> bool:
        """Return True when no byte differs."""
        return self.mismatched_bytes == 0

    def describe(self) -> str:
        """Return a one-line verdict for the CLI."""
        verdict = "bit-exact" if self.bit_exact else "MISMATCH"
        return (f"TFLite Micro: {verdict} ({self.mismatched_bytes} of {self.total_bytes} "
                "output bytes differ)")


def compare_with_tflm(model_bytes: bytes, inputs: Sequence[np.ndarray],
                      outputs: Sequence[np.ndarray]) -> TflmComparison:
    """Run TFLite Micro on `inputs`; return how many bytes of `outputs` it disagrees with."""
    return compare_outputs(outputs, run_tflm(model_bytes, inputs))


def compare_outputs(outputs: Sequence[np.ndarray], theirs: Sequence[np.ndarray]
                    ) -> TflmComparison:
    """Return how many bytes of `outputs` TFLite Micro's outputs `theirs` disagree with."""
    mismatched = total = 0
    for ours, other in zip(outputs, theirs, strict=True):
        a = np.ascontiguousarray(ours).view(np.uint8).ravel()
        b = np.ascontiguousarray(other).view(np.uint8).ravel()
        total += a.size
        mismatched += (int(np.count_nonzero(a != b)) if a.size == b.size
                       else max(a.size, b.size))
    return TflmComparison(mismatched, total, tuple(theirs))


@contextlib.contextmanager
def _captured_fds() -> Iterator[list[bytes]]:
    """Capture what C code writes to file descriptors 1 and 2; yields a list filled on exit."""
    captured: list[bytes] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.append(sink.read())


def tflm_arena_bytes(model_bytes: bytes) -> int | None:
    """Return TFLM's recorded total arena bytes for the model, or None if not reported.

    Runs one inference on zero inputs and parses the RecordingMicroAllocator report
    ("Arena allocation total N bytes") that the C++ side prints to stdout/stderr.
    """
    interpreter = _interpreter(model_bytes, None)
    with _captured_fds() as captured:
        details = [interpreter.get_input_details(i) for i in range(_io_counts(model_bytes)[0])]
        _invoke(interpreter, [np.zeros(tuple(d["shape"]), d["dtype"]) for d in details])
        interpreter.print_allocations()
    match = _TOTAL_RE.search(captured[0])
    return int(match.group(1)) if match else None
