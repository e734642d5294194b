"""The synthesized models `calibrate.py` measures: zoo MobileNets and random MBConv nets.

Every model is built from a seed by `mnv2gen.estimate.standin` (placeholder weights; the
instruction counts of the kernels do not depend on the values). The random MBConv nets
cover what the zoo does not: 5x5 and 7x7 depthwise kernels, expansion ratios 1-6, odd
channel counts, grayscale inputs, AVERAGE_POOL heads and two-layer dense heads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mnv2gen.estimate.standin import quantised_graph, standin_graph
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
from mnv2gen.zoo_float import INPUT, FloatLayer


@dataclass(frozen=True)
class Spec:
    """One calibration model: how to build it, reproducibly."""

    name: str
    kind: str          # "zoo" or "mbconv"
    args: tuple

    def build(self) -> Graph:
        """Return the int8 graph of this model."""
        if self.kind == "zoo":
            return standin_graph(*self.args)
        return mbconv_net(self.name, *self.args)


class _Layers:
    """Appends weightless FloatLayers with SAME padding, tracking shapes."""

    def __init__(self, resolution: int, channels: int) -> None:
        self.layers: list[FloatLayer] = []
        self.shapes = {INPUT: (1, resolution, resolution, channels)}

    def _add(self, layer: FloatLayer) -> str:
        self.layers.append(layer)
        self.shapes[layer.name] = layer.shape
        return layer.name

    def window(self, name, kind, x, out_c, kernel, stride, activation):
        """Append a CONV_2D or DEPTHWISE_CONV_2D with SAME padding; return its name."""
        _, h, w, c = self.shapes[x]
        top, bottom = same_padding(h, kernel, stride)
        left, right = same_padding(w, kernel, stride)
        attrs = ConvAttrs(stride, stride, Padding(top, bottom, left, right), activation)
        shape = (1, conv_output_size(h, kernel, stride, top, bottom),
                 conv_output_size(w, kernel, stride, left, right),
                 c if kind is OpKind.DEPTHWISE_CONV_2D else out_c)
        weights = ((1, kernel, kernel, c) if kind is OpKind.DEPTHWISE_CONV_2D
                   else (out_c, kernel, kernel, c))
        return self._add(FloatLayer(kind, name, (x,), shape, attrs, weights))

    def add(self, name, a, b):
        """Append an ADD of two tensors; return its name."""
        return self._add(FloatLayer(OpKind.ADD, name, (a, b), self.shapes[a], AddAttrs()))

    def head(self, rng: random.Random, x: str, classes: int, softmax: bool = True) -> None:
        """Append a classifier: MEAN or AVERAGE_POOL, one or two dense layers, softmax."""
        _, h, w, c = self.shapes[x]
        if rng.random() < 0.5:
            x = self._add(FloatLayer(OpKind.MEAN, "pool", (x,), (1, c), MeanAttrs((1, 2), False)))
        else:
            pooled = self._add(FloatLayer(OpKind.AVERAGE_POOL_2D, "pool", (x,), (1, 1, 1, c),
                                          PoolAttrs(h, w, 1, 1, Padding())))
            x = self._add(FloatLayer(OpKind.RESHAPE, "flatten", (pooled,), (1, c)))
        if rng.random() < 0.3:
            hidden = rng.choice([16, 32, 64, 100])
            x = self._add(FloatLayer(OpKind.FULLY_CONNECTED, "dense", (x,), (1, hidden),
                                     FullyConnectedAttrs(Activation.RELU6), (hidden, c)))
            c = hidden
        x = self._add(FloatLayer(OpKind.FULLY_CONNECTED, "logits", (x,), (1, classes),
                                 FullyConnectedAttrs(), (classes, c)))
        if not softmax:
            return
        self._add(FloatLayer(OpKind.SOFTMAX, "predictions", (x,), (1, classes),
                             SoftmaxAttrs(1.0)))


def mbconv_net(name: str, seed: int, head: str = "classifier") -> Graph:
    """Return a random MCUNet-like int8 network (inverted residual blocks of varied kernel,
    expansion and odd or even widths). head "classifier": pooling and dense layers;
    "fomo": a 1x1 convolution to 3 channels and a softmax per pixel (no pooling, no dense
    layer), like Edge Impulse's FOMO detector; "logits": the classifier without softmax."""
    rng = random.Random(seed)
    resolution = rng.choice([48, 64, 80, 96, 112, 128, 144])
    channels = rng.choice([1, 3, 3, 3])
    b = _Layers(resolution, channels)
    relu6 = Activation.RELU6
    width = rng.choice([8, 12, 15, 16, 24, 32])
    x = b.window("stem", OpKind.CONV_2D, INPUT, width, 3, 2, relu6)
    block = 0
    for stage in range(rng.randint(4, 6)):
        out_c = max(4, int(width * rng.uniform(1.0, 1.8)) + rng.choice([0, 0, 1, 3]))
        stride = 2 if stage in (0, 1, 3) or rng.random() < 0.2 else 1
        for i in range(rng.randint(1, 3)):
            kernel = rng.choice([3, 3, 5, 7])
            t = rng.choice([1, 2, 3, 4, 5, 6]) if i or stage else 1
            s = stride if i == 0 else 1
            if b.shapes[x][1] < 4:
                s = 1
            y = x
            if t > 1:
                y = b.window(f"b{block}_expand", OpKind.CONV_2D, x, width * t, 1, 1, relu6)
            y = b.window(f"b{block}_dw", OpKind.DEPTHWISE_CONV_2D, y, 0, kernel, s, relu6)
            y = b.window(f"b{block}_project", OpKind.CONV_2D, y, out_c, 1, 1, Activation.NONE)
            if s == 1 and width == out_c:
                y = b.add(f"b{block}_add", x, y)
            x, width, block = y, out_c, block + 1
    if head == "fomo":
        x = b.window("heat_map", OpKind.CONV_2D, x, 3, 1, 1, Activation.NONE)
        b._add(FloatLayer(OpKind.SOFTMAX, "predictions", (x,), b.shapes[x], SoftmaxAttrs(1.0)))
        return quantised_graph(name, b.layers, (1, resolution, resolution, channels), seed)
    if rng.random() < 0.6:
        x = b.window("conv_last", OpKind.CONV_2D, x, rng.choice([64, 96, 160, 320]), 1, 1, relu6)
    b.head(rng, x, rng.choice([2, 5, 10, 100]), softmax=head != "logits")
    return quantised_graph(name, b.layers, (1, resolution, resolution, channels), seed)


def calibration_specs(count_mbconv: int = 16) -> list[Spec]:
    """Return the calibration models: zoo MobileNetV2/V1 of several widths, resolutions,
    class counts and input channels, `count_mbconv` random MBConv nets, four FOMO-like
    nets (no dense layer) and two without softmax."""
    specs = []
    for alpha, resolution, classes, channels in (
            (0.35, 96, 1000, 3), (0.35, 160, 10, 1), (0.35, 64, 2, 3), (0.5, 96, 2, 3),
            (0.5, 128, 1000, 3), (0.75, 96, 10, 3), (1.0, 96, 2, 1), (1.0, 128, 1000, 3),
            (0.75, 128, 2, 3), (0.5, 48, 10, 1)):
        specs.append(Spec(f"zoo_v2_{alpha}_{resolution}_{classes}_{channels}", "zoo",
                          ("mobilenet-v2", alpha, resolution, classes, channels)))
    for alpha, resolution, classes, channels in (
            (0.25, 96, 2, 1), (0.25, 128, 1000, 3), (0.5, 96, 10, 3), (0.75, 128, 100, 3),
            (1.0, 96, 2, 3)):
        specs.append(Spec(f"zoo_v1_{alpha}_{resolution}_{classes}_{channels}", "zoo",
                          ("mobilenet-v1", alpha, resolution, classes, channels)))
    specs += [Spec(f"mbconv_{seed}", "mbconv", (seed,)) for seed in range(count_mbconv)]
    # without dense layers or pooling: separates those kernels' code from the rest
    specs += [Spec(f"fomo_{seed}", "mbconv", (seed, "fomo")) for seed in range(100, 104)]
    specs += [Spec(f"logits_{seed}", "mbconv", (seed, "logits")) for seed in range(200, 202)]
    return specs
