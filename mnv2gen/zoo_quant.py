"""Quantise calibrated float layers into an int8 IR graph, as the TFLite converter does.

- input: int8, scale 1/127.5, zero point -1 (an image in [-1, 1]);
- activations: asymmetric int8 from the calibrated (min, max), widened to include 0;
  RELU6 outputs are fixed to [0, 6] (scale 6/255, zero point -128);
- SOFTMAX output: scale 1/256, zero point -128;
- RESHAPE and AVERAGE_POOL_2D keep their input's quantisation;
- conv/depthwise weights: symmetric int8 per output channel, scale max|w| / 127;
  FULLY_CONNECTED weights: symmetric per tensor;
- biases: int32, scale input_scale * weight_scale (float32), zero point 0.
"""

from __future__ import annotations

import numpy as np

from mnv2gen.ir import Activation, DType, Graph, Op, OpKind, QuantParams, Tensor
from mnv2gen.zoo_float import INPUT, FloatLayer

INPUT_QUANT = QuantParams((float(np.float32(1 / 127.5)),), (-1,))
RELU6_QUANT = QuantParams((float(np.float32(6 / 255)),), (-128,))
SOFTMAX_QUANT = QuantParams((float(np.float32(1 / 256)),), (-128,))
_SAME_AS_INPUT = {OpKind.RESHAPE, OpKind.AVERAGE_POOL_2D, OpKind.PAD, OpKind.TRANSPOSE}


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def asymmetric_quant(lo: float, hi: float) -> QuantParams:
    """Return int8 QuantParams covering [lo, hi] (widened to include 0), with the
    TFLite converter's zero-point nudging."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32(max(hi - lo, 1e-6) / 255.0))
    zero_point = -128 - lo / scale
    zero_point = int(np.clip(_round_half_away(np.float64(zero_point)), -128, 127))
    return QuantParams((scale,), (zero_point,))


def _output_quant(layer: FloatLayer, ranges, tensors) -> QuantParams:
    if layer.kind is OpKind.SOFTMAX:
        return SOFTMAX_QUANT
    if layer.kind in _SAME_AS_INPUT:
        return tensors[layer.inputs[0]].quant
    if getattr(layer.attrs, "activation", Activation.NONE) is Activation.RELU6:
        return RELU6_QUANT
    return asymmetric_quant(*ranges[layer.name])


def weight_tensors(layer: FloatLayer, input_scale: float) -> tuple[Tensor, Tensor]:
    """Return the int8 weight and int32 bias tensors of a conv/depthwise/FC layer.

    Raises OverflowError when a bias does not fit int32 (input scale far too small).
    """
    w = layer.weights.astype(np.float64)
    axis = 3 if layer.kind is OpKind.DEPTHWISE_CONV_2D else 0
    if layer.kind is OpKind.FULLY_CONNECTED:
        peak = np.abs(w).max(keepdims=True).reshape(1)
        axis = 0
    else:
        peak = np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis))
    w_scale = (np.maximum(peak, 1e-12) / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1 if w_scale.size > 1 else 1
    q = np.clip(_round_half_away(w / w_scale.astype(np.float64).reshape(shape)), -127, 127)
    weights = Tensor(f"{layer.name}/weights", tuple(w.shape), DType.INT8,
                     QuantParams(tuple(map(float, w_scale)), (0,) * w_scale.size, axis),
                     q.astype(np.int8))
    b_scale = (np.float32(input_scale) * w_scale).astype(np.float32)
    b_scale = np.broadcast_to(b_scale, (layer.bias.size,)) if b_scale.size == 1 else b_scale
    qb = _round_half_away(layer.bias.astype(np.float64) / b_scale.astype(np.float64))
    if np.abs(qb).max(initial=0) >= 2 ** 31:
        raise OverflowError(f"{layer.name}: bias does not fit int32")
    scales = tuple(map(float, b_scale)) if w_scale.size > 1 else (float(b_scale[0]),)
    bias = Tensor(f"{layer.name}/bias", (layer.bias.size,), DType.INT32,
                  QuantParams(scales, (0,) * len(scales), 0), qb.astype(np.int32))
    return weights, bias


def scalar_tensor(name: str, value: float) -> Tensor:
    """Return a constant int8 scalar: value = scale * 127 (symmetric, as weights)."""
    scale = float(np.float32(max(abs(value), 1e-12) / 127.0))
    return Tensor(name, (), DType.INT8, QuantParams((scale,), (0,)),
                  np.array(127 if value >= 0 else -127, dtype=np.int8))


_weight_tensors = weight_tensors  # old name, still imported by frontend.ptq


def quantise(name: str, input_shape: tuple[int, ...], layers: list[FloatLayer],
             ranges: dict[str, tuple[float, float]]) -> Graph:
    """Return the int8 IR Graph of calibrated float `layers` (not yet verified)."""
    tensors = {INPUT: Tensor(INPUT, input_shape, DType.INT8, INPUT_QUANT)}
    ops = []
    for index, layer in enumerate(layers):
        inputs = layer.inputs
        if layer.kind is OpKind.MUL and layer.weights is not None:
            constant = scalar_tensor(f"{layer.name}/constant", float(layer.weights))
            tensors[constant.name] = constant
            inputs = (*inputs, constant.name)
        elif layer.weights is not None:
            weights, bias = weight_tensors(layer, tensors[layer.inputs[0]].scale)
            tensors[weights.name], tensors[bias.name] = weights, bias
            inputs = (*inputs, weights.name, bias.name)
        out_quant = _output_quant(layer, ranges, tensors)
        tensors[layer.name] = Tensor(layer.name, layer.shape, DType.INT8, out_quant)
        ops.append(Op(layer.kind, layer.name, inputs, (layer.name,), layer.attrs, index))
    return Graph(name, tensors, tuple(ops), (INPUT,), (layers[-1].name,))
