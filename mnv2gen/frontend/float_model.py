"""The float intermediate form of an imported model, and its NumPy executor.

A `FloatModel` is a list of `zoo_float.FloatLayer`s (the model zoo's float form: NHWC,
IR operator kinds and attributes, conv weights (out_c, kh, kw, in_c), depthwise weights
(1, kh, kw, out_c), FC weights (out_f, in_f), float bias, fused activations) plus what
is needed to feed it ONNX-layout data and to trace its tensors back to ONNX names.
The executor reuses the zoo's float kernels, so there is one float implementation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from mnv2gen.zoo_float import INPUT, FloatLayer, forward

BATCH = 8  # images per executor call: bounds memory at 224x224 (~100 MB per batch)


@dataclass(frozen=True, eq=False)
class FloatModel:
    """A float model in NHWC with batch-1 shapes; `INPUT` names its input tensor.

    - `input_shape`: NHWC shape the layers read; `input_nchw`: the ONNX input is NCHW
      (ONNX-layout data is transposed once, by `to_nhwc`).
    - `output`: the last layer, whose value is the model output; `output_nchw`: the ONNX
      output is NCHW (the float form holds it as NHWC).
    - `onnx_names`: ONNX tensor name -> the float tensor holding the same values.
    - `weight_sources`: layer -> (ONNX weight initializer, ONNX bias initializer or "").
    - `source_nodes`: layer -> index of the ONNX node that created it.
    """

    name: str
    layers: tuple[FloatLayer, ...]
    input_shape: tuple[int, ...]
    input_nchw: bool
    output: str
    output_nchw: bool
    onnx_input_shape: tuple[int, ...]
    onnx_names: Mapping[str, str]
    weight_sources: Mapping[str, tuple[str, str]]
    source_nodes: Mapping[str, int]
    source_sha256: str = ""

    def __post_init__(self) -> None:
        for f in ("onnx_names", "weight_sources", "source_nodes"):
            object.__setattr__(self, f, MappingProxyType(dict(getattr(self, f))))

    def layer(self, name: str) -> FloatLayer:
        """Return the layer whose output tensor is `name`."""
        return next(layer for layer in self.layers if layer.name == name)

    def to_nhwc(self, batch: np.ndarray) -> np.ndarray:
        """Return a batch in ONNX input layout as float32 in the float form's layout."""
        batch = np.asarray(batch, dtype=np.float32)
        return np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if self.input_nchw else batch

    def to_onnx_layout(self, batch: np.ndarray) -> np.ndarray:
        """Return an NHWC input batch in the ONNX model's input layout."""
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)) if self.input_nchw else batch

    def output_to_onnx_layout(self, out: np.ndarray) -> np.ndarray:
        """Return an NHWC output batch in the ONNX model's output layout."""
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) if self.output_nchw else out


def _batches(images: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), size):
        yield images[start:start + size]


def run_float(model: FloatModel, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Return the model output (float32, NHWC for 4-D outputs) for NHWC `images` (N, ...)."""
    outputs = []
    for chunk in _batches(np.asarray(images, np.float32), batch):
        # keep only the last value (the output): earlier ones are freed as they go
        (_, last), = deque(forward(list(model.layers), chunk), maxlen=1)
        outputs.append(last)
    return np.concatenate(outputs)


def tensor_values(model: FloatModel, images: np.ndarray,
                  batch: int = BATCH) -> Iterator[tuple[int, str, np.ndarray]]:
    """Yield (batch number, tensor name, value) for every tensor, input first, per batch."""
    for number, chunk in enumerate(_batches(np.asarray(images, np.float32), batch)):
        for name, value in forward(list(model.layers), chunk):
            yield number, name, value


__all__ = ["INPUT", "FloatModel", "run_float", "tensor_values"]
