"""Synthesised int8 MobileNets (V2 and V1) of any width and resolution, as IR graphs.

The architectures follow Keras applications (identical to TF-slim for the published
widths), with SAME padding and readable names: `conv1`, `block_<i>_expand`,
`block_<i>_depthwise`, `block_<i>_project`, `block_<i>_add`, `conv_last`, `global_pool`,
`logits`, `predictions` (V2); `conv1`, `conv_dw_<i>`, `conv_pw_<i>`, `avg_pool`,
`conv_preds`, `reshape`, `predictions` (V1). Weights are random but made trained-looking,
and every tensor calibrated, layer by layer on a batch of smooth random int8 images
(`zoo_calibrate`, `zoo_weights`), with TFLite's quantisation scheme. Same arguments and
seed give the same bytes on every machine: nothing depends on BLAS, threads or the CPU.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mnv2gen.errors import MnvError, quoted
from mnv2gen.ir import (
    Activation,
    AddAttrs,
    ConvAttrs,
    FullyConnectedAttrs,
    Graph,
    MeanAttrs,
    OpKind,
    Padding,
    PoolAttrs,
    SoftmaxAttrs,
)
from mnv2gen.shapes import conv_output_size, same_padding
from mnv2gen.zoo_calibrate import calibrated_graph
from mnv2gen.zoo_float import INPUT, FloatLayer, Init, sample_images

ARCHS = ("mobilenet-v2", "mobilenet-v1")
ALPHA_RANGE = (0.1, 2.0)
RESOLUTION_RANGE = (32, 512)
CLASSES_RANGE = (1, 10000)
CHANNELS_RANGE = (1, 4)
CALIBRATION_IMAGES = 12

# MobileNetV2 inverted residual stages: (expansion t, channels c, repeats n, stride s)
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))
# MobileNetV1 depthwise-separable layers: (pointwise channels, depthwise stride)
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
             (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Return v rounded to a multiple of `divisor` (at least min_value, never 10% below v)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class _Builder:
    """Appends weightless FloatLayers, tracking shapes (batch 1) and SAME padding."""

    def __init__(self, resolution: int, channels: int) -> None:
        self.layers: list[FloatLayer] = []
        self.shapes = {INPUT: (1, resolution, resolution, channels)}

    def _append(self, layer: FloatLayer) -> str:
        self.layers.append(layer)
        self.shapes[layer.name] = layer.shape
        return layer.name

    def _window(self, x: str, kernel: int, stride: int, activation: Activation):
        _, h, w, c = self.shapes[x]
        top, bottom = same_padding(h, kernel, stride)
        left, right = same_padding(w, kernel, stride)
        attrs = ConvAttrs(stride, stride, Padding(top, bottom, left, right), activation)
        size = (conv_output_size(h, kernel, stride, top, bottom),
                conv_output_size(w, kernel, stride, left, right))
        return attrs, size, c

    def conv(self, name: str, x: str, out_c: int, kernel: int, stride: int,
             activation: Activation, init: Init = Init.BATCH_NORM) -> str:
        attrs, (ho, wo), c = self._window(x, kernel, stride, activation)
        return self._append(FloatLayer(OpKind.CONV_2D, name, (x,), (1, ho, wo, out_c), attrs,
                                       (out_c, kernel, kernel, c), init))

    def depthwise(self, name: str, x: str, stride: int, activation: Activation) -> str:
        attrs, (ho, wo), c = self._window(x, 3, stride, activation)
        return self._append(FloatLayer(OpKind.DEPTHWISE_CONV_2D, name, (x,), (1, ho, wo, c),
                                       attrs, (1, 3, 3, c), Init.BATCH_NORM))

    def add(self, name: str, a: str, b: str) -> str:
        return self._append(FloatLayer(OpKind.ADD, name, (a, b), self.shapes[a], AddAttrs()))

    def global_mean(self, name: str, x: str) -> str:
        n, _, _, c = self.shapes[x]
        return self._append(FloatLayer(OpKind.MEAN, name, (x,), (n, c), MeanAttrs((1, 2), False)))

    def global_average_pool(self, name: str, x: str) -> str:
        n, h, w, c = self.shapes[x]
        attrs = PoolAttrs(h, w, 2, 2, Padding())  # stride as TF-slim; the window covers the map
        return self._append(FloatLayer(OpKind.AVERAGE_POOL_2D, name, (x,), (n, 1, 1, c), attrs))

    def fully_connected(self, name: str, x: str, out_f: int) -> str:
        n, in_f = self.shapes[x]
        return self._append(FloatLayer(OpKind.FULLY_CONNECTED, name, (x,), (n, out_f),
                                       FullyConnectedAttrs(), (out_f, in_f), Init.LOGITS))

    def reshape(self, name: str, x: str, shape: tuple[int, ...]) -> str:
        return self._append(FloatLayer(OpKind.RESHAPE, name, (x,), shape))

    def softmax(self, name: str, x: str) -> str:
        return self._append(FloatLayer(OpKind.SOFTMAX, name, (x,), self.shapes[x],
                                       SoftmaxAttrs(1.0)))


def _mobilenet_v2(b: _Builder, alpha: float, classes: int) -> None:
    relu6 = Activation.RELU6
    in_c = make_divisible(32 * alpha)
    x = b.conv("conv1", INPUT, in_c, 3, 2, relu6)
    block = 0
    for t, c, n, s in V2_STAGES:
        out_c = make_divisible(int(c * alpha))  # Keras truncates before rounding
        for i in range(n):
            stride = s if i == 0 else 1
            name = f"block_{block}"
            y = b.conv(f"{name}_expand", x, in_c * t, 1, 1, relu6) if t != 1 else x
            y = b.depthwise(f"{name}_depthwise", y, stride, relu6)
            y = b.conv(f"{name}_project", y, out_c, 1, 1, Activation.NONE)
            if stride == 1 and in_c == out_c:
                y = b.add(f"{name}_add", x, y)
            x, in_c, block = y, out_c, block + 1
    last_c = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = b.conv("conv_last", x, last_c, 1, 1, relu6)
    x = b.global_mean("global_pool", x)
    x = b.fully_connected("logits", x, classes)
    b.softmax("predictions", x)


def _mobilenet_v1(b: _Builder, alpha: float, classes: int) -> None:
    relu6 = Activation.RELU6
    x = b.conv("conv1", INPUT, max(1, int(32 * alpha)), 3, 2, relu6)
    for i, (c, stride) in enumerate(V1_LAYERS, start=1):
        x = b.depthwise(f"conv_dw_{i}", x, stride, relu6)
        x = b.conv(f"conv_pw_{i}", x, max(1, int(c * alpha)), 1, 1, relu6)
    x = b.global_average_pool("avg_pool", x)
    x = b.conv("conv_preds", x, classes, 1, 1, Activation.NONE, init=Init.LOGITS)
    x = b.reshape("reshape", x, (1, classes))
    b.softmax("predictions", x)


_ARCH_BUILDERS = {"mobilenet-v2": _mobilenet_v2, "mobilenet-v1": _mobilenet_v1}


def _check_args(arch: str, alpha: float, resolution: int, classes: int, seed: int,
                channels: int) -> None:
    if arch not in _ARCH_BUILDERS:
        raise MnvError(f"unknown architecture {quoted(arch)}; allowed: {', '.join(ARCHS)}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]:
        raise MnvError(f"alpha {alpha!r} is out of range; allowed: {ALPHA_RANGE[0]} to "
                       f"{ALPHA_RANGE[1]} (published widths 0.35, 0.5, 0.75, 1.0, 1.3, 1.4)")
    for what, value, (lo, hi) in (("resolution", resolution, RESOLUTION_RANGE),
                                  ("classes", classes, CLASSES_RANGE),
                                  ("channels", channels, CHANNELS_RANGE)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not lo <= value <= hi:
            raise MnvError(f"{what} {value!r} is out of range; allowed: integers {lo} to {hi}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MnvError(f"seed {seed!r} is not allowed; allowed: integers >= 0")


def architecture(arch: str, alpha: float, resolution: int, classes: int,
                 channels: int = 3) -> list[FloatLayer]:
    """Return the weightless layer list of a MobileNet (shapes, attributes, names)."""
    _check_args(arch, alpha, resolution, classes, 0, channels)
    builder = _Builder(resolution, channels)
    _ARCH_BUILDERS[arch](builder, float(alpha), classes)
    return builder.layers


def float_layers(graph: Graph, layers: list[FloatLayer]) -> list[FloatLayer]:
    """Return `layers` with the float weights and biases the int8 `graph` represents
    (int8 value * scale): the model's float twin, for comparing int8 with float."""
    filled = []
    for layer in layers:
        if layer.weights_shape:
            w = graph.tensor(f"{layer.name}/weights")
            b = graph.tensor(f"{layer.name}/bias")
            shape = [1] * w.data.ndim
            shape[w.quant.axis] = -1
            scales = np.array(w.quant.scale, np.float64).reshape(shape if len(w.quant.scale) > 1
                                                                 else [1] * w.data.ndim)
            layer = replace(layer, weights=(w.data * scales).astype(np.float32),
                            bias=(b.data * np.array(b.quant.scale)).astype(np.float32))
        filled.append(layer)
    return filled


def model_name(arch: str, alpha: float, resolution: int) -> str:
    """Return the graph name, e.g. 'mobilenet_v2_0.35_96'."""
    width = f"{float(alpha):.3f}".rstrip("0")
    return f"{arch.replace('-', '_')}_{width}{'0' if width.endswith('.') else ''}_{resolution}"


def synthesize(arch: str, alpha: float, resolution: int, classes: int, seed: int = 0,
               channels: int = 3) -> Graph:
    """Return a verified int8 IR Graph of a trained-looking MobileNet (see module doc).

    Raises MnvError for an unknown `arch` or out-of-range values.
    """
    _check_args(arch, alpha, resolution, classes, seed, channels)
    layers = architecture(arch, alpha, resolution, classes, channels)
    images = sample_images(CALIBRATION_IMAGES, resolution, channels, seed)
    graph = calibrated_graph(model_name(arch, alpha, resolution), layers, images, seed)
    graph.verify()
    return graph


def synthesize_tflite(arch: str, alpha: float, resolution: int, classes: int, seed: int = 0,
                      channels: int = 3) -> bytes:
    """Return `synthesize(...)` serialised as a TFLite flatbuffer."""
    from mnv2gen.frontend.tflite_writer import write_tflite

    return write_tflite(synthesize(arch, alpha, resolution, classes, seed, channels))
