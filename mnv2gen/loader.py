"""Model loading: file -> front end -> passes, the start of every command."""

from __future__ import annotations

from pathlib import Path

from mnv2gen.errors import ModelError
from mnv2gen.frontend.tflite import load_tflite, read_model_bytes
from mnv2gen.ir import Graph
from mnv2gen.passes import run_passes


def load_raw(path: str | Path) -> Graph:
    """Return the faithful IR translation of a model file (no passes applied)."""
    data = read_model_bytes(path)
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return load_tflite(data, label=str(path))
    if Path(path).suffix.lower() == ".onnx":
        raise ModelError(f"{path}: ONNX models are not supported yet",
                         "convert the model to an int8 .tflite file")
    raise ModelError(f"{path}: not a TFLite model (no 'TFL3' file identifier)",
                     "expected a .tflite flatbuffer with int8 quantisation")


def load_model(path: str | Path) -> Graph:
    """Return the IR Graph of a model file, normalised by the passes."""
    return run_passes(load_raw(path))
