"""Shape-exact stand-ins of synthesized MobileNets: the zoo's layers, placeholder weights.

`mnv2gen zoo` gives its random weights trained-looking statistics on an int8 forward pass,
which takes seconds per model (linear solves on receptive-field covariances). Arena,
MACs, code and the instruction estimate depend on the architecture only (shapes, kernel
sizes, strides, which ops exist), and the constant bytes on the array sizes (the code
generator's pool also stores an array once when two are identical, which random weights
make a coincidence). So `estimate` takes the layer list from `zoo.architecture`, fills in
seeded random weights and fixed activation ranges, and quantises it with the zoo's own
quantiser: the same graph structure as `mnv2gen zoo` in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mnv2gen.ir import Graph, OpKind
from mnv2gen.seeded import Stream
from mnv2gen.zoo import architecture, model_name
from mnv2gen.zoo_float import INPUT, FloatLayer
from mnv2gen.zoo_quant import quantise

# Range of every tensor whose quantisation the zoo derives from calibration (linear
# projections, ADD, logits); RELU6 outputs, the input and softmax are fixed by the zoo.
_LINEAR_RANGE = (-4.0, 4.0)
_WEIGHT_STD = 0.1
_SPREAD = 0.635  # (1 + t) / (1 - t) for t in [-0.635, 0.635] spans a factor of 20


def quantised_graph(name: str, layers: list[FloatLayer], input_shape: tuple[int, ...],
                    seed: int = 0) -> Graph:
    """Return the verified int8 Graph of weightless `layers` with seeded placeholder
    weights (normal, per-channel scales spread like trained ones) and biases, quantised by
    `mnv2gen.zoo_quant`."""
    stream = Stream(seed, 0x5EED)  # the same bits on every machine (see mnv2gen.seeded)
    filled, ranges = [], {INPUT: (-1.0, 1.0)}
    for layer in layers:
        if layer.weights_shape:
            shape = layer.weights_shape
            # channels get scales spread over a factor of 20, as trained ones do, so that
            # no two layers share a requantisation table the const pool would store once
            axis = 3 if layer.kind is OpKind.DEPTHWISE_CONV_2D else 0
            t = stream.uniform(-_SPREAD, _SPREAD, shape[axis])
            spread = ((1.0 + t) / (1.0 - t)).reshape(
                [-1 if i == axis else 1 for i in range(len(shape))])
            weights = (stream.normal(0.0, 1.0, shape) * spread * _WEIGHT_STD).astype(np.float32)
            bias = (stream.normal(0.0, 1.0, layer.shape[-1]) * _WEIGHT_STD).astype(np.float32)
            layer = replace(layer, weights=weights, bias=bias)
        filled.append(layer)
        ranges[layer.name] = _LINEAR_RANGE
    graph = quantise(name, input_shape, filled, ranges)
    graph.verify()
    return graph


def standin_graph(arch: str, alpha: float, resolution: int, classes: int,
                  channels: int = 3, seed: int = 0) -> Graph:
    """Return a graph with the structure of `zoo.synthesize(arch, alpha, resolution,
    classes, seed, channels)` (same name, layers, shapes and quantisation layout) and
    placeholder weights. Raises MnvError for out-of-range arguments, as the zoo does."""
    layers = architecture(arch, alpha, resolution, classes, channels)
    return quantised_graph(model_name(arch, alpha, resolution), layers,
                           (1, resolution, resolution, channels), seed)
