"""Model loading: file -> front end -> passes, the start of every command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnv2gen.errors import MnvError, ModelError, file_label, quoted
from mnv2gen.frontend.onnx_graph import is_quantized, parse_model_proto
from mnv2gen.frontend.onnx_qdq import load_qdq
from mnv2gen.frontend.tflite import load_tflite, read_model_bytes
from mnv2gen.ir import Graph
from mnv2gen.passes import run_passes


def _is_onnx(data: bytes, path: Path) -> bool:
    """Return True for a .onnx file, or any other file that parses as an ONNX model."""
    if path.suffix.lower() == ".onnx":
        return True
    try:
        parse_model_proto(data, file_label(path))
    except ModelError:
        return False
    return True


@dataclass(frozen=True)
class Calibration:
    """How to quantise a float ONNX model on the fly (as `mnv2gen quantize` does)."""

    source: str                      # image folder, .npy batch, or "random"
    preprocess: object | None = None  # mnv2gen.frontend.calibration.Preprocess
    percentile: float | None = None


def guarded(label: str, translate, *args):
    """Return translate(*args); an exception that is no MnvError (a malformation the ONNX
    checks do not name yet) becomes a one-line ModelError unless MNV2GEN_DEBUG is set."""
    try:
        return translate(*args)
    except MnvError:
        raise
    except Exception as exc:
        if os.environ.get("MNV2GEN_DEBUG"):
            raise
        raise ModelError(f"{label}: cannot translate the ONNX graph ({type(exc).__name__}: "
                         f"{quoted(exc)})", "the file is corrupt or uses an operator in a way "
                         "mnv2gen does not support") from None


def load_raw(path: str | Path, calibration: Calibration | None = None) -> Graph:
    """Return the faithful IR translation of a model file (no passes applied), checked by
    the front door (mnv2gen.frontend.validate).

    TFLite flatbuffers go to the TFLite front end; ONNX files with QuantizeLinear nodes
    (QDQ int8) to the QDQ front end. A float ONNX model needs calibration data, so it is
    refused here with a pointer to `mnv2gen quantize`.
    """
    data = read_model_bytes(path)
    label = file_label(path)
    name = Path(path).name  # the graph keeps the real file name; messages show `label`
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return load_tflite(data, label=label).replace(name=name)
    path = Path(path)
    if _is_onnx(data, path):
        if is_quantized(data, label):
            return guarded(label, load_qdq, data, label, path.resolve().parent
                           ).replace(name=name)
        if calibration is not None:
            return guarded(label, _quantize, path, calibration).replace(name=name)
        raise ModelError(f"{label}: a float ONNX model; it needs post-training quantisation "
                         "with calibration data first",
                         "give --calibrate IMAGES_DIR (or x.npy), or run `mnv2gen quantize "
                         "MODEL.onnx --calibrate IMAGES_DIR -o model.tflite` once")
    raise ModelError(f"{label}: not a TFLite model (no 'TFL3' file identifier)",
                     "expected a .tflite flatbuffer with int8 quantisation or an ONNX model")


def tflite_bytes(path: str | Path, raw: Graph | None = None) -> bytes:
    """Return the model as TFLite bytes: a .tflite file as it is, an ONNX QDQ model
    translated (or `raw`, its already loaded graph) and written by `write_tflite` (for the
    TFLite Micro cross-checks)."""
    data = read_model_bytes(path)
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return data
    from mnv2gen.frontend.tflite_writer import write_tflite

    return write_tflite(raw if raw is not None else load_raw(path))


def _quantize(path: Path, calibration: Calibration) -> Graph:
    from mnv2gen.frontend.calibration import Preprocess
    from mnv2gen.frontend.ptq import quantize_onnx

    result = quantize_onnx(path, calibration.source, calibration.preprocess or Preprocess(),
                           calibration.percentile)
    return result.graph


def load_model(path: str | Path, calibration: Calibration | None = None) -> Graph:
    """Return the IR Graph of a model file, normalised by the passes; a float ONNX model is
    quantised first when `calibration` is given. Raises UnsupportedError for a model that
    `build` could not generate (the one support check every command shares)."""
    return checked(run_passes(load_raw(path, calibration)))


def checked(graph: Graph) -> Graph:
    """Return a passed graph after the code-generation support check of its integer core."""
    from mnv2gen.codegen.support import check_supported
    from mnv2gen.passes.integer_core import integer_core

    check_supported(integer_core(graph))
    return graph
