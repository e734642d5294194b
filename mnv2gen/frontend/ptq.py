"""Post-training quantisation of a FloatModel to TFLite's int8 scheme.

Choices (those of the TFLite converter, via `zoo_quant`):
- the model input keeps a float32 edge: QUANTIZE float -> int8 with the calibrated
  range of the input, as TFLite does for float in/out (`integer_core` cuts it for C);
- activations: asymmetric int8 over the calibrated [min, max] (or the [100-P, P]
  percentiles with `percentile`; the input always uses min/max), widened to include 0
  and clamped to the fused activation (RELU: >= 0; RELU6 outputs are fixed to [0, 6]);
- ADD inputs and output and MEAN outputs keep their own calibrated scales;
- SOFTMAX output: scale 1/256, zero point -128; RESHAPE keeps its input's;
- conv/depthwise weights: symmetric int8 per output channel; FULLY_CONNECTED weights:
  symmetric int8 per tensor (as the converter's default); biases int32 with scale
  input_scale * weight_scale and zero point 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnv2gen.errors import MnvError, ModelError, quoted
from mnv2gen.frontend.calibration import RANDOM, Preprocess, Samples, load_samples
from mnv2gen.frontend.float_model import FloatModel, tensor_values
from mnv2gen.frontend.int8_assembly import assemble
from mnv2gen.frontend.onnx_float import translate
from mnv2gen.frontend.onnx_graph import QOPERATORS, read_onnx_file
from mnv2gen.frontend.validate import HINT_LIMITS, LIMITS, check_shape
from mnv2gen.ir import Activation, Graph, OpKind, QuantParams, Tensor
from mnv2gen.zoo_float import INPUT, FloatLayer
from mnv2gen.zoo_quant import RELU6_QUANT, SOFTMAX_QUANT, _weight_tensors, asymmetric_quant

Ranges = dict[str, tuple[float, float]]
SAMPLE_CAP = 1 << 18  # values kept per tensor for percentiles


def calibrate(model: FloatModel, data: np.ndarray, percentile: float | None = None) -> Ranges:
    """Return {tensor: (low, high)} over the calibration batch `data` (NHWC float32).

    min/max by default; with `percentile` P in (50, 100], the (100 - P)th and Pth
    percentiles of a strided sample of each activation (the input keeps min/max).
    """
    if percentile is not None and not 50.0 < percentile <= 100.0:
        raise MnvError(f"--percentile {percentile} is not in (50, 100]")
    if not len(data):
        raise MnvError("no calibration samples")
    batches = -(-len(data) // 8)
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    kept: dict[str, list[np.ndarray]] = defaultdict(list)
    for _, name, value in tensor_values(model, data):
        lows[name] = min(lows.get(name, np.inf), float(value.min()))
        highs[name] = max(highs.get(name, -np.inf), float(value.max()))
        if percentile is not None and name != INPUT:
            flat = value.reshape(-1)
            step = max(1, flat.size * batches // SAMPLE_CAP)
            kept[name].append(flat[::step].copy())
    ranges = {name: (lows[name], highs[name]) for name in lows}
    for name, parts in kept.items():
        lo, hi = np.percentile(np.concatenate(parts), [100.0 - percentile, percentile])
        ranges[name] = (float(lo), float(hi))
    return ranges


def _activation_quant(layer: FloatLayer, ranges: Ranges, quant: dict) -> QuantParams:
    """Return the int8 output quantisation of one layer."""
    if layer.kind is OpKind.SOFTMAX:
        return SOFTMAX_QUANT
    if layer.kind is OpKind.RESHAPE:
        return quant[layer.inputs[0]]
    activation = getattr(layer.attrs, "activation", Activation.NONE)
    if activation is Activation.RELU6:
        return RELU6_QUANT
    lo, hi = ranges[layer.name]
    if activation is Activation.RELU:
        lo, hi = max(lo, 0.0), max(hi, 0.0)
    elif activation is Activation.RELU_N1_TO_1:
        lo, hi = min(max(lo, -1.0), 1.0), min(max(hi, -1.0), 1.0)
    return asymmetric_quant(lo, hi)


def _weights(layer: FloatLayer, x: Tensor) -> tuple[Tensor, Tensor]:
    try:
        return _weight_tensors(layer, x.scale)
    except OverflowError as exc:
        raise MnvError(f"{layer.name}: {exc}", "the input scale is too small for the bias; "
                       "calibrate with more representative data") from None


def quantize_float_model(model: FloatModel, ranges: Ranges) -> Graph:
    """Return the int8 IR Graph of `model` given calibrated ranges (see module docstring)."""
    quant = {INPUT: asymmetric_quant(*ranges[INPUT])}
    for layer in model.layers:
        quant[layer.name] = _activation_quant(layer, ranges, quant)
    return assemble(model, quant, _weights, model.name)


def check_float_shapes(label: str, model: FloatModel) -> None:
    """Raise ModelError when a layer's shape, or all activations together, exceed the front
    door's limits: calibration runs the float model, so this comes before any sample."""
    total = 0
    for where, shape in (("the input", model.input_shape),
                         *((f"node {model.source_nodes.get(layer.name, '?')} "
                            f"({quoted(layer.name)})", layer.shape) for layer in model.layers)):
        check_shape(label, where, shape)
        total += math.prod(shape)
        if math.prod(shape) > LIMITS.max_float_elements:
            raise ModelError(f"{label}: {where} has {math.prod(shape):,} elements; "
                             "post-training quantisation calibrates float tensors of at "
                             f"most {LIMITS.max_float_elements:,}", HINT_LIMITS)
    if total > LIMITS.max_activation_bytes:
        raise ModelError(f"{label}: its activations take {total:,} bytes in int8; at most "
                         f"{LIMITS.max_activation_bytes:,} are supported", HINT_LIMITS)


@dataclass(frozen=True)
class Quantized:
    """A float ONNX model, its int8 graph and the data it was calibrated on."""

    model: FloatModel
    graph: Graph
    calibration: Samples
    method: str


def quantize_onnx(path: str | Path, calibrate_with: str | None, preprocess: Preprocess,
                  percentile: float | None = None, input_shape: tuple[int, ...] | None = None,
                  seed: int = 0) -> Quantized:
    """Return the int8 quantisation of the float ONNX model at `path`.

    `calibrate_with` is a folder of images, a .npy batch, or 'random' (smooth random
    images: the result is only good for size and speed estimates).
    """
    if not calibrate_with:
        raise MnvError(f"{path}: post-training quantisation needs calibration data",
                       "give --calibrate IMAGES_DIR or x.npy (a few dozen representative "
                       f"inputs); `--calibrate {RANDOM}` quantises on random images for size "
                       "and speed estimates only (its accuracy means nothing)")
    graph = read_onnx_file(path, input_shape)
    if any(node.op_type == "QuantizeLinear" or node.op_type in QOPERATORS
           for node in graph.nodes):
        raise MnvError(f"{path}: is already quantised (it has QuantizeLinear or QLinear nodes)",
                       "use it directly: inspect, plan, build and verify read QDQ and "
                       "QOperator models")
    model = translate(graph)
    check_float_shapes(graph.label, model)
    samples = load_samples(calibrate_with, model, preprocess, seed)
    graph = quantize_float_model(model, calibrate(model, samples.data, percentile))
    method = "min/max" if percentile is None else f"percentile {percentile:g}"
    return Quantized(model, graph, samples, method)
