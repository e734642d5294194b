"""Int8 weights and int32 biases of a QDQ/QOperator ONNX layer, as the IR wants them.

The IR (TFLite's int8 scheme) holds weights symmetric (zero point 0) per tensor or per
output channel, biases int32 at input_scale * weight_scale. ONNX files state weights as
DequantizeLinear of int8 or uint8 initializers with any zero point. The integers
`q - zero_point` are the weights; where every output channel's integers fit int8 they
are taken as they are (exact: the same real weights, the same integer arithmetic).
Asymmetric uint8 weights (onnxruntime's older QUInt8 default) often span more than 255
steps around their zero point in one or two channels of a layer: those channels alone are
re-quantised with a wider scale (not exact; the conversion notes say how many and by how
much) and their biases re-stated at the new scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mnv2gen.errors import UnsupportedError, quoted
from mnv2gen.frontend.float_model import FloatModel
from mnv2gen.ir import DType, OpKind, QuantParams, Tensor
from mnv2gen.zoo_float import FloatLayer

INT8_MIN, INT8_MAX = -128, 127
REQUANT_MAX = 127  # re-quantised channels use TFLite's symmetric range [-127, 127]


@dataclass(frozen=True)
class QuantConst:
    """An integer initializer read through DequantizeLinear: real = scale * (q - zp)."""

    data: np.ndarray
    scale: np.ndarray  # float32, one per slice along `axis` (or one)
    zero_point: np.ndarray
    axis: int


@dataclass
class Requantised:
    """What re-quantising weight channels changed, over the whole model."""

    layers: list[tuple[int, int, int]] = field(default_factory=list)  # (node, changed, of)
    worst_step: float = 0.0  # largest weight change, in steps of the file's scale
    all_layers: int = 0  # weighted layers seen, and their output channels
    all_channels: int = 0
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # weights -> changed channels

    def note(self) -> str | None:
        """Return the conversion note, or None when nothing was re-quantised."""
        if not self.layers:
            return None
        changed = sum(c for _, c, _ in self.layers)
        worst = max(self.layers, key=lambda e: e[1])
        return (f"not exact: {changed} of {self.all_channels} output channels (in "
                f"{len(self.layers)} of {self.all_layers} layers) have weights whose integers "
                "(q - zero point) do not fit int8; those channels are re-quantised with a "
                f"wider scale (largest weight change {self.worst_step:.2f} of the file's "
                f"weight step; most in one layer: {worst[1]} of {worst[2]} channels at node "
                f"{worst[0]}); all other channels are exact")


def _channel_axis(layer: FloatLayer) -> int:
    return 3 if layer.kind is OpKind.DEPTHWISE_CONV_2D else 0


class Weights:
    """Builds the int8 weight and int32 bias tensors of a layer from the QDQ constants."""

    def __init__(self, model: FloatModel, const_quant: dict, label: str) -> None:
        self.model, self.cq, self.label = model, const_quant, label
        self.requantised = Requantised()

    def fail(self, layer: FloatLayer, what: str, hint: str = "") -> UnsupportedError:
        node = self.model.source_nodes.get(layer.name, -1)
        return UnsupportedError(f"{self.label}: node {node} ({layer.kind.value} "
                                f"{quoted(layer.name)}) {what}", hint)

    def __call__(self, layer: FloatLayer, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (int8 weights, int32 bias) of `layer` reading the int8 tensor `x`."""
        w_name, b_name = self.model.weight_sources[layer.name]
        if w_name not in self.cq:
            raise self.fail(layer, f"has float weights {quoted(w_name)}",
                            "weights must be DequantizeLinear of int8 or uint8 initializers")
        wq = self.cq[w_name]
        axis = _channel_axis(layer)
        channels = layer.weights.shape[axis]
        if wq.scale.size not in (1, channels):
            raise self.fail(layer, f"has {wq.scale.size} weight scales for {channels} outputs")
        self.requantised.all_layers += 1
        self.requantised.all_channels += channels
        shape = [1] * layer.weights.ndim
        shape[axis] = -1
        scale = wq.scale.reshape(shape)
        steps = np.rint(layer.weights / np.where(scale == 0, 1, scale))  # all-zero channels
        if not np.array_equal((steps.astype(np.float32) * scale).astype(np.float32),
                              layer.weights):
            raise self.fail(layer, "has weights that changed after dequantisation (a Mul, "
                            "BatchNormalization or alpha folded into them)",
                            "fold those before quantising")
        scales, q, changed, worst = self._fit_int8(steps, wq.scale, axis)
        w_quant = QuantParams(tuple(float(s) for s in scales), (0,) * scales.size, axis)
        weights = Tensor(f"{layer.name}/weights", layer.weights.shape, DType.INT8, w_quant, q)
        if changed.any():
            record = self.requantised
            record.layers.append((self.model.source_nodes.get(layer.name, -1),
                                  int(changed.sum()), channels))
            record.worst_step = max(record.worst_step, worst)
            record.masks[weights.name] = changed
        return weights, self._bias(layer, x, scales, b_name)

    @staticmethod
    def _fit_int8(steps: np.ndarray, file_scale: np.ndarray,
                  axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Return (weight scales, int8 weights, mask of the re-quantised output channels,
        their largest weight change in file steps): the file's integers where a channel
        fits int8, the channel re-quantised at a wider (per-channel) scale where not."""
        other = tuple(i for i in range(steps.ndim) if i != axis)
        low, high = steps.min(axis=other), steps.max(axis=other)
        bad = (low < INT8_MIN) | (high > INT8_MAX)
        if not bad.any():
            return file_scale.astype(np.float32), steps.astype(np.int8), bad, 0.0
        channels = steps.shape[axis]
        scales = np.broadcast_to(file_scale.astype(np.float32), (channels,)).copy()
        q = np.moveaxis(steps.copy(), axis, 0)
        worst = 0.0
        for c in np.flatnonzero(bad):
            peak = float(np.abs(q[c]).max())
            new_scale = np.float32(float(scales[c]) * peak / REQUANT_MAX)
            new_q = np.clip(np.rint(q[c] * (float(scales[c]) / float(new_scale))),
                            -REQUANT_MAX, REQUANT_MAX)
            worst = max(worst, float(np.abs(new_q * float(new_scale) - q[c] * float(scales[c]))
                                     .max() / float(scales[c])))
            q[c], scales[c] = new_q, new_scale
        return scales, np.moveaxis(q, 0, axis).astype(np.int8), bad, worst

    def _bias(self, layer: FloatLayer, x: Tensor, w_scale: np.ndarray, b_name: str) -> Tensor:
        """Return the int32 bias at input_scale * weight_scale per channel: the file's
        integers where it states them at that scale, the float bias re-stated elsewhere."""
        expected = (np.float32(x.scale) * w_scale).astype(np.float32)
        expected = np.broadcast_to(expected, layer.bias.shape)
        bq = self.cq.get(b_name)
        restated = np.rint(layer.bias.astype(np.float64) / expected.astype(np.float64))
        data, scales = restated, expected
        if (bq is not None and bq.data.dtype == np.int32 and not np.any(bq.zero_point)
                and np.array_equal((bq.data.astype(np.float32) * bq.scale).astype(np.float32),
                                   layer.bias)):
            file_scale = np.broadcast_to(bq.scale, expected.shape)
            kept = np.isclose(file_scale, expected, rtol=1e-6, atol=0)
            data = np.where(kept, bq.data.astype(np.float64), restated)
            scales = np.where(kept, file_scale, expected)
        if np.abs(data).max(initial=0) >= 2 ** 31:
            raise self.fail(layer, "has a bias that does not fit int32")
        quant = QuantParams(tuple(float(s) for s in scales), (0,) * scales.size, 0)
        return Tensor(f"{layer.name}/bias", layer.bias.shape, DType.INT32, quant,
                      data.astype(np.int32))
