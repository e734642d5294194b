"""The zoo's int8 graph, built and calibrated layer by layer on exact integer statistics.

A batch of int8 calibration images flows through the layers already quantised (the NumPy
reference kernels: integer arithmetic) while each next layer is made:
1. weights: `zoo_weights` (smooth He-normal, shrunk towards what the input uses),
   quantised symmetric int8 per output channel (per tensor for FULLY_CONNECTED);
2. their int32 accumulators on the batch give every channel's mean and variance exactly
   (`exact.channel_moments`). Batch norm is folded in as in a trained network: each
   channel is normalised and given a random gain and shift (RELU6 layers wider and shifted
   so they use [0, 6]; classifier logits get per-class offsets and a spread of LOGIT_STD).
   The gain goes into the weight scale (the int8 weights keep their full range), the shift
   into the int32 bias;
3. a linear output's (min, max) on the batch, from its integer accumulators, sets its
   asymmetric int8 quantisation (`zoo_quant.asymmetric_quant`, the converter's nudging);
   ADD and MEAN outputs likewise from their exact inputs; RELU6 outputs use [0, 6],
   SOFTMAX 1/256, RESHAPE and AVERAGE_POOL_2D keep their input's;
4. the layer's int8 output on the batch (reference requantisation) feeds the next layer.

This is sequential calibration: each layer is calibrated on what the int8 model really
computes before it. No step uses a float matrix product or a float reduction whose order a
library chooses (see `mnv2gen.exact`), so the same arguments give the same bytes on every
CPU, BLAS build, thread count and NumPy version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mnv2gen import exact, quant, reference, reference_ops
from mnv2gen.ir import Activation, DType, Graph, Op, OpKind, QuantParams, Tensor
from mnv2gen.seeded import Stream
from mnv2gen.zoo_float import INPUT, FloatLayer, Init, last_uses
from mnv2gen.zoo_quant import INPUT_QUANT, RELU6_QUANT, SOFTMAX_QUANT, asymmetric_quant
from mnv2gen.zoo_weights import channel_axis, he_normal, matched_weights

RELU6_SHIFT = 1.5  # mean of the batch-norm shift before RELU6
LOGIT_STD = 4.0
_SAME_AS_INPUT = (OpKind.RESHAPE, OpKind.AVERAGE_POOL_2D)


@dataclass
class _Build:
    """The graph so far: batch-1 tensors, ops, and int8 values on the calibration batch."""

    tensors: dict[str, Tensor]
    values: dict[str, np.ndarray]
    ops: list[Op] = field(default_factory=list)

    def kernel_graph(self, op: Op, extra: dict[str, Tensor]) -> Graph:
        """Return a graph holding `op`'s tensors with the batch size of the values, for
        the reference kernels."""
        batch = len(self.values[op.inputs[0]])
        tensors = {**self.tensors, **extra}

        def batched(t: Tensor) -> Tensor:
            return t if t.is_const else replace(t, shape=(batch, *t.shape[1:]))

        return Graph("calibration", {n: batched(tensors[n]) for n in (*op.inputs, *op.outputs)},
                     (op,), (), ())

    def add(self, op: Op, tensors: dict[str, Tensor], value: np.ndarray) -> None:
        """Record `op`, its new tensors and its output's value on the batch."""
        self.tensors.update(tensors)
        self.ops.append(op)
        self.values[op.outputs[0]] = value


def quantize_images(images: np.ndarray) -> np.ndarray:
    """Return float images in [-1, 1] as int8 with the zoo's input quantisation
    (float32 division, rounding half away from zero, as QUANTIZE does)."""
    q = quant.round_half_away(images.astype(np.float32) / np.float32(INPUT_QUANT.scale[0]))
    return np.clip(q + INPUT_QUANT.zero_point[0], -128, 127).astype(np.int8)


def _symmetric_int8(w: np.ndarray, kind: OpKind) -> tuple[np.ndarray, np.ndarray]:
    """Return (int8 weights, float64 scale per output channel or one per tensor)."""
    if kind is OpKind.FULLY_CONNECTED:
        peak = np.abs(w).max(keepdims=True)
    else:
        axis = channel_axis(kind)
        peak = np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis), keepdims=True)
    scale = np.maximum(peak, 1e-12) / 127.0
    q = np.clip(quant.round_half_away(w / scale), -127, 127).astype(np.int8)
    return q, scale.reshape(-1)


def _batch_norm(layer: FloatLayer, mean: np.ndarray, std: np.ndarray, stream: Stream):
    """Return per-channel (gain, bias) turning a pre-activation of this (mean, std) into a
    trained batch-norm output (real units)."""
    n = mean.shape[0]
    if layer.init is Init.LOGITS:
        gain = np.full(n, LOGIT_STD / float(np.sqrt(exact.fsum(std ** 2) / n)))
        shift = stream.normal(0.0, 1.0, n)
    elif layer.attrs.activation is Activation.RELU6:
        gain = stream.uniform(1.0, 2.0, n) / std
        shift = stream.normal(RELU6_SHIFT, 0.5, n)
    else:
        gain = stream.uniform(0.6, 1.4, n) / std
        shift = stream.normal(0.0, 0.25, n)
    return gain, shift - mean * gain


def _output_quant(layer: FloatLayer, low: float, high: float) -> QuantParams:
    if getattr(layer.attrs, "activation", Activation.NONE) is Activation.RELU6:
        return RELU6_QUANT
    return asymmetric_quant(low, high)


def _weighted(layer: FloatLayer, build: _Build, stream: Stream, index: int) -> None:
    """Add a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED layer, calibrated (steps 1-4)."""
    x = build.tensors[layer.inputs[0]]
    xq = build.values[layer.inputs[0]]
    if layer.init is Init.LOGITS:
        w = he_normal(layer, stream)
    else:
        w = matched_weights(layer, xq, x.zero_point, stream)
    q, w_scale = _symmetric_int8(w, layer.kind)
    n = layer.shape[-1]
    names = (f"{layer.name}/weights", f"{layer.name}/bias")
    op = Op(layer.kind, layer.name, (layer.inputs[0], *names), (layer.name,), layer.attrs,
            index)
    axis = 0 if layer.kind is OpKind.FULLY_CONNECTED else channel_axis(layer.kind)
    draft = {names[0]: Tensor(names[0], q.shape, DType.INT8,
                              QuantParams(tuple(w_scale), (0,) * w_scale.size, axis), q),
             names[1]: Tensor(names[1], (n,), DType.INT32, None, np.zeros(n, np.int32)),
             layer.name: Tensor(layer.name, layer.shape, DType.INT8, RELU6_QUANT)}
    acc = reference_ops.ACCUMULATORS[layer.kind](build.kernel_graph(op, draft), op,
                                                 [xq, q, draft[names[1]].data])
    mean_acc, var_acc = exact.channel_moments(acc)
    unit = float(np.float32(x.scale)) * np.broadcast_to(w_scale, (n,))  # real per acc step
    gain, bias = _batch_norm(layer, unit * mean_acc, unit * np.sqrt(var_acc) + 1e-3, stream)
    scale = (np.broadcast_to(w_scale, (n,)) * gain).astype(np.float32)  # gain folded in
    scale = scale[:1] if w_scale.size == 1 else scale
    bias_scale = np.float32(x.scale) * scale
    bias_scale = np.broadcast_to(bias_scale, (n,)).astype(np.float64)
    qb = quant.round_half_away(bias / bias_scale)
    if np.abs(qb).max(initial=0) >= 2 ** 31:
        raise OverflowError(f"{layer.name}: bias does not fit int32")
    qb = qb.astype(np.int32)
    flat = acc.reshape(-1, n)
    low = float((bias_scale * (flat.min(axis=0) + qb)).min())
    high = float((bias_scale * (flat.max(axis=0) + qb)).max())
    bias_scales = tuple(map(float, bias_scale)) if scale.size > 1 else (float(bias_scale[0]),)
    final = {names[0]: replace(draft[names[0]], quant=QuantParams(
                 tuple(map(float, scale)), (0,) * scale.size, axis)),
             names[1]: Tensor(names[1], (n,), DType.INT32,
                              QuantParams(bias_scales, (0,) * len(bias_scales), 0), qb),
             layer.name: Tensor(layer.name, layer.shape, DType.INT8,
                                _output_quant(layer, low, high))}
    out = reference_ops.requantize_accumulators(build.kernel_graph(op, final), op,
                                                acc + qb.astype(np.int64))
    build.add(op, final, out)


def _real(build: _Build, name: str) -> np.ndarray:
    t = build.tensors[name]
    return float(np.float32(t.scale)) * (build.values[name].astype(np.float64) - t.zero_point)


def _unweighted(layer: FloatLayer, build: _Build, index: int) -> None:
    """Add an ADD, MEAN, pooling, RESHAPE or SOFTMAX layer with its output quantisation."""
    op = Op(layer.kind, layer.name, layer.inputs, (layer.name,), layer.attrs, index)
    if layer.kind is OpKind.SOFTMAX:
        out_quant = SOFTMAX_QUANT
    elif layer.kind in _SAME_AS_INPUT:
        out_quant = build.tensors[layer.inputs[0]].quant
    elif layer.kind is OpKind.ADD:
        total = _real(build, layer.inputs[0]) + _real(build, layer.inputs[1])
        out_quant = asymmetric_quant(float(total.min()), float(total.max()))
    elif layer.kind is OpKind.MEAN:
        x = build.tensors[layer.inputs[0]]
        axes = tuple(layer.attrs.axes)
        count = int(np.prod([x.shape[a] for a in axes]))
        sums = (build.values[layer.inputs[0]].astype(np.int64) - x.zero_point).sum(axis=axes)
        real = float(np.float32(x.scale)) * sums.astype(np.float64) / count
        out_quant = asymmetric_quant(float(real.min()), float(real.max()))
    else:
        raise NotImplementedError(f"zoo layer kind {layer.kind}")
    tensors = {layer.name: Tensor(layer.name, layer.shape, DType.INT8, out_quant)}
    graph = build.kernel_graph(op, tensors)
    args = [build.values[n] for n in layer.inputs]
    build.add(op, tensors, reference.KERNELS[layer.kind](graph, op, args))


def calibrated_graph(name: str, layers: list[FloatLayer], images: np.ndarray,
                     seed: int) -> Graph:
    """Return the int8 Graph of weightless `layers`, calibrated on float `images` (N, H,
    W, C in [-1, 1]); deterministic for a given seed (see the module docstring)."""
    stream = Stream(seed, 0x3E1647)
    x = quantize_images(images)
    build = _Build({INPUT: Tensor(INPUT, (1, *x.shape[1:]), DType.INT8, INPUT_QUANT)},
                   {INPUT: x})
    last = last_uses(layers)
    for index, layer in enumerate(layers):
        if layer.weights_shape:
            _weighted(layer, build, stream, index)
        else:
            _unweighted(layer, build, index)
        for n in layer.inputs:
            if last[n] == index:
                del build.values[n]
    return Graph(name, build.tensors, tuple(build.ops), (INPUT,), (layers[-1].name,))
