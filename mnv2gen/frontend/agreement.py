"""How well an int8 graph agrees with the float model it was quantised from.

The float side runs in onnxruntime when it is installed (the model exactly as the file
states it), otherwise in the NumPy float executor; the int8 side is the bit-exact
reference (`mnv2gen.reference`), whose DEQUANTIZE output is compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnv2gen.errors import MnvError
from mnv2gen.frontend.float_model import FloatModel, run_float
from mnv2gen.ir import Graph
from mnv2gen.reference import run


@dataclass(frozen=True)
class Agreement:
    """Float vs int8 outputs over `samples` inputs."""

    samples: int
    top1_matches: int
    mean_abs_error: float
    max_abs_error: float
    float_runner: str

    @property
    def top1_agreement(self) -> float:
        """Return the fraction of samples whose arg-max class is the same (0..1)."""
        return self.top1_matches / self.samples if self.samples else 0.0

    def as_dict(self) -> dict:
        """Return the JSON fields of this comparison."""
        return {"samples": self.samples, "top1_matches": self.top1_matches,
                "top1_agreement": self.top1_agreement, "mean_abs_error": self.mean_abs_error,
                "max_abs_error": self.max_abs_error, "float_runner": self.float_runner}


def onnxruntime_outputs(path: str | Path, onnx_inputs: np.ndarray) -> np.ndarray | None:
    """Return onnxruntime's outputs for ONNX-layout inputs (one run per sample), or None
    when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise MnvError(f"{path}: onnxruntime cannot load the model ({exc})") from None
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[None]})[0] for x in onnx_inputs])


def float_outputs(path: str | Path, model: FloatModel, data: np.ndarray,
                  use_onnxruntime: bool = True) -> tuple[np.ndarray, str]:
    """Return (float outputs in the ONNX output layout, runner name) for NHWC `data`."""
    if use_onnxruntime:
        out = onnxruntime_outputs(path, model.to_onnx_layout(data))
        if out is not None:
            return out, "onnxruntime"
    return model.output_to_onnx_layout(run_float(model, data)), "numpy"


def int8_outputs(graph: Graph, model: FloatModel, data: np.ndarray) -> np.ndarray:
    """Return the int8 graph's dequantised outputs (ONNX layout), one reference run each."""
    out = np.concatenate([run(graph, [x[None]])[0] for x in np.asarray(data, np.float32)])
    return model.output_to_onnx_layout(out)


def compare(reference: np.ndarray, candidate: np.ndarray, runner: str) -> Agreement:
    """Return the Agreement of two output batches of the same shape."""
    a = reference.reshape(len(reference), -1).astype(np.float64)
    b = candidate.reshape(len(candidate), -1).astype(np.float64)
    diff = np.abs(a - b)
    return Agreement(len(a), int(np.count_nonzero(a.argmax(1) == b.argmax(1))),
                     float(diff.mean()), float(diff.max()), runner)


def agreement(path: str | Path, model: FloatModel, graph: Graph, data: np.ndarray,
              use_onnxruntime: bool = True) -> Agreement:
    """Return the float-vs-int8 Agreement of `graph` on NHWC float32 inputs `data`."""
    reference, runner = float_outputs(path, model, data, use_onnxruntime)
    return compare(reference, int8_outputs(graph, model, data), runner)
