"""ONNX front end, float part: an `OnnxGraph` -> a `FloatModel` (NHWC float layers).

Layout is handled in one place: every 4-D activation is held NHWC; a value whose ONNX
tensor is NCHW carries `nchw=True` and each operator maps ONNX axes through it. The
input is NCHW unless every reader of it is a Transpose(0, 3, 1, 2) (tf2onnx's NHWC
input), which then becomes an alias. Folding happens while translating: Pad into the
next Conv's padding, BatchNormalization and Mul/Add/Sub/Div by per-channel constants
into the Conv/Gemm before them, Relu/Clip into a fused activation, shape arithmetic
into constants. The operator rules live in `onnx_float_ops.HANDLERS`, the translation
state in `onnx_translator`.
"""

from __future__ import annotations

from pathlib import Path

from mnv2gen.frontend.float_model import FloatModel
from mnv2gen.frontend.onnx_float_ops import HANDLERS, SUPPORTED
from mnv2gen.frontend.onnx_graph import OnnxGraph, read_onnx_file
from mnv2gen.frontend.onnx_translator import Translator


def translate(graph: OnnxGraph) -> FloatModel:
    """Return the FloatModel of an OnnxGraph (float ops only; see the module docstring)."""
    tr = Translator(graph)
    tr.start()
    tr.run(HANDLERS, SUPPORTED)
    return tr.finish()


def load_onnx_float(path: str | Path, input_shape: tuple[int, ...] | None = None) -> FloatModel:
    """Return the FloatModel of a float ONNX file.

    Raises ModelError for unreadable or malformed files and UnsupportedError (naming the
    file, node index and operator) for anything outside the supported set.
    """
    return translate(read_onnx_file(path, input_shape))
