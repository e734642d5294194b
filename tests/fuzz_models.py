"""Small consistent int8 models of any input size, for the fuzz corpus and edge-size tests.

`consistent_model(h, w)` is a miniature MobileNetV2: a 3x3 stride-2 stem, one inverted
residual block with a shortcut, one with stride 2, MEAN, FULLY_CONNECTED and SOFTMAX.
Weights and biases are random; scales are picked so activations use a good part of the
int8 range. Nothing here is realistic enough for accuracy, all of it is valid TFLite.
"""

from __future__ import annotations

import numpy as np

from mnv2gen.ir import (
    Activation,
    AddAttrs,
    ConvAttrs,
    DType,
    FullyConnectedAttrs,
    Graph,
    MeanAttrs,
    Op,
    OpKind,
    Padding,
    QuantParams,
    SoftmaxAttrs,
    Tensor,
)
from mnv2gen.shapes import conv_output_size, same_padding

RELU6_QUANT = QuantParams((float(np.float32(6 / 255)),), (-128,))
SOFTMAX_QUANT = QuantParams((float(np.float32(1 / 256)),), (-128,))


class _Net:
    """Appends ops with random weights and plausible scales, tracking shapes."""

    def __init__(self, h: int, w: int, c: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        q = QuantParams((float(np.float32(1 / 128)),), (int(self.rng.integers(-8, 8)),))
        self.tensors["input"] = Tensor("input", (1, h, w, c), DType.INT8, q)

    def _act_quant(self, activation: Activation, scale: float) -> QuantParams:
        if activation is Activation.RELU6:
            return RELU6_QUANT
        return QuantParams((float(np.float32(scale)),), (int(self.rng.integers(-10, 10)),))

    def _add(self, kind, inputs, out_shape, attrs, out_quant) -> str:
        name = f"t{len(self.ops)}"
        self.tensors[name] = Tensor(name, tuple(out_shape), DType.INT8, out_quant)
        self.ops.append(Op(kind, f"op{len(self.ops)}", tuple(inputs), (name,), attrs,
                           len(self.ops)))
        return name

    def _weights(self, shape, axis: int, x_scale: float) -> tuple[str, str, float]:
        channels = shape[axis]
        data = self.rng.integers(-127, 128, shape).astype(np.int8)
        scales = self.rng.uniform(0.004, 0.02, channels).astype(np.float32)
        w_name, b_name = f"w{len(self.ops)}", f"b{len(self.ops)}"
        self.tensors[w_name] = Tensor(w_name, tuple(shape), DType.INT8,
                                      QuantParams(tuple(map(float, scales)), (0,) * channels,
                                                  axis), data)
        bias_scales = tuple(float(np.float32(x_scale) * s) for s in scales)
        bias = self.rng.integers(-500, 500, channels).astype(np.int32)
        self.tensors[b_name] = Tensor(b_name, (channels,), DType.INT32,
                                      QuantParams(bias_scales, (0,) * channels), bias)
        depth = int(np.prod(shape)) // channels
        return w_name, b_name, float(x_scale * scales.mean() * 40 * np.sqrt(depth))

    def conv(self, x: str, out_c: int, k: int, stride: int, activation: Activation,
             depthwise: bool = False) -> str:
        t = self.tensors[x]
        _, h, w, c = t.shape
        top, bottom = same_padding(h, k, stride)
        left, right = same_padding(w, k, stride)
        ho = conv_output_size(h, k, stride, top, bottom)
        wo = conv_output_size(w, k, stride, left, right)
        if depthwise:
            wn, bn, scale = self._weights((1, k, k, c), 3, t.scale)
            out_c, kind = c, OpKind.DEPTHWISE_CONV_2D
        else:
            wn, bn, scale = self._weights((out_c, k, k, c), 0, t.scale)
            kind = OpKind.CONV_2D
        attrs = ConvAttrs(stride, stride, Padding(top, bottom, left, right), activation)
        return self._add(kind, (x, wn, bn), (1, ho, wo, out_c), attrs,
                         self._act_quant(activation, scale))

    def block(self, x: str, expand: int, stride: int, out_c: int) -> str:
        c = self.tensors[x].shape[3]
        y = self.conv(x, c * expand, 1, 1, Activation.RELU6)
        y = self.conv(y, 0, 3, stride, Activation.RELU6, depthwise=True)
        y = self.conv(y, out_c, 1, 1, Activation.NONE)
        if stride == 1 and out_c == c:
            t = self.tensors[y]
            y = self._add(OpKind.ADD, (x, y), t.shape, AddAttrs(),
                          self._act_quant(Activation.NONE, t.scale * 1.5))
        return y

    def head(self, x: str, classes: int) -> str:
        _, _, _, c = self.tensors[x].shape
        m = self._add(OpKind.MEAN, (x,), (1, c), MeanAttrs((1, 2), False),
                      self._act_quant(Activation.NONE, self.tensors[x].scale))
        wn, bn, scale = self._weights((classes, c), 0, self.tensors[m].scale)
        logits = self._add(OpKind.FULLY_CONNECTED, (m, wn, bn), (1, classes),
                           FullyConnectedAttrs(), self._act_quant(Activation.NONE, scale))
        return self._add(OpKind.SOFTMAX, (logits,), (1, classes), SoftmaxAttrs(1.0),
                         SOFTMAX_QUANT)

    def graph(self, name: str, output: str) -> Graph:
        return Graph(name, self.tensors, tuple(self.ops), ("input",), (output,))


def consistent_model(h: int, w: int | None = None, channels: int = 3, seed: int = 0,
                     classes: int = 3, head: bool = True) -> Graph:
    """Return a verified miniature MobileNetV2 graph with an (1, h, w, channels) input."""
    net = _Net(h, w or h, channels, seed)
    x = net.conv("input", 8, 3, 2, Activation.RELU6)
    x = net.block(x, 3, 1, 8)
    x = net.block(x, 3, 2, 16)
    out = net.head(x, classes) if head else x
    graph = net.graph(f"consistent_{h}x{w or h}", out)
    graph.verify()
    return graph


def consistent_tflite(h: int, w: int | None = None, **kwargs) -> bytes:
    """Return `consistent_model(...)` as a .tflite flatbuffer."""
    from mnv2gen.frontend.tflite_writer import write_tflite

    return write_tflite(consistent_model(h, w, **kwargs))


def family_model(arch: str = "mobilenet-v2", alpha: float = 0.35, resolution: int = 32,
                 classes: int = 3, seed: int = 0, channels: int = 3) -> Graph:
    """Return the zoo's MobileNet architecture at any resolution (1 and up, unlike `mnv2gen
    zoo`) with random weights and fixed activation ranges: a valid, unrealistic model."""
    from dataclasses import replace

    from mnv2gen import zoo
    from mnv2gen.zoo_float import INPUT
    from mnv2gen.zoo_quant import quantise

    rng = np.random.default_rng(seed)
    builder = zoo._Builder(resolution, channels)
    zoo._ARCH_BUILDERS[arch](builder, float(alpha), classes)
    layers = []
    for layer in builder.layers:
        if layer.weights_shape:
            fan_in = int(np.prod(layer.weights_shape)) // max(layer.weights_shape[0], 1)
            weights = rng.normal(0, 1 / np.sqrt(max(fan_in, 1)), layer.weights_shape)
            out_c = layer.weights_shape[3 if layer.kind is OpKind.DEPTHWISE_CONV_2D else 0]
            layer = replace(layer, weights=weights.astype(np.float32),
                            bias=rng.normal(0, 0.1, out_c).astype(np.float32))
        layers.append(layer)
    ranges = {INPUT: (-1.0, 1.0)} | {layer.name: (-3.0, 3.0) for layer in layers}
    name = f"{zoo.model_name(arch, alpha, resolution)}_random"
    graph = quantise(name, (1, resolution, resolution, channels), layers, ranges)
    graph.verify()
    return graph


def tiny_qdq_onnx(folder, seed: int = 0, qoperator: bool = False,
                  uint8: bool = False) -> bytes | None:
    """Return a small int8 ONNX model (onnx_builders.nchw_residual quantised by
    onnxruntime's static quantiser, per-channel weights) in the QDQ form, or with
    `qoperator` in the QOperator form (QLinearConv, QLinearAdd, ...); `uint8` quantises the
    activations to uint8 (QUInt8). None without onnxruntime."""
    from pathlib import Path

    try:
        from onnxruntime import quantization
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        return None
    import onnx
    import onnx_builders as ob

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    samples = [rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(4)]

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": s} for s in samples])

        def get_next(self):
            return next(self.batches, None)

    tag = f"{'qop' if qoperator else 'qdq'}{'_u8' if uint8 else ''}_{seed}"
    float_path, prepared, quantised = (folder / f"{tag}_{n}.onnx" for n in "fpq")
    onnx.save(ob.nchw_residual(seed), str(float_path))
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    fmt = quantization.QuantFormat.QOperator if qoperator else quantization.QuantFormat.QDQ
    activations = quantization.QuantType.QUInt8 if uint8 else quantization.QuantType.QInt8
    quantization.quantize_static(
        str(prepared), str(quantised), Reader(), quant_format=fmt,
        activation_type=activations, weight_type=quantization.QuantType.QInt8,
        per_channel=True)
    return quantised.read_bytes()
