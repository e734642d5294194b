"""Float side of the model zoo: layer specs, calibration images and NumPy float kernels.

`mnv2gen.zoo` describes an architecture as a list of weightless `FloatLayer`s;
`mnv2gen.zoo_calibrate` gives them weights; `forward()` runs a float network (the ONNX
front end's executor, whose activations calibrate `mnv2gen quantize`).

The kernels give the same bits on every machine (see `mnv2gen.exact`): convolution and
FULLY_CONNECTED products via `exact_dot` (operands rounded to fixed point with 20+ bits,
then an exact float64 product), MEAN via exact sums, depthwise and pooling as elementwise
sums in a fixed order. Only SOFTMAX calls `exp`, whose output no quantisation depends on.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mnv2gen.errors import UnsupportedError
from mnv2gen.exact import exact_dot, exact_mean
from mnv2gen.ir import Activation, Attrs, ConvAttrs, NoAttrs, OpKind
from mnv2gen.seeded import Stream

INPUT = "input"


class Init(enum.Enum):
    """How `zoo_calibrate.calibrate()` initialises a layer's weights."""

    NONE = "none"  # no weights
    BATCH_NORM = "batch_norm"  # random, matched to its input, then batch norm folded in
    LOGITS = "logits"  # He-normal, rescaled so the logits spread like a trained head


@dataclass(frozen=True)
class FloatLayer:
    """One float operator; output tensor name = `name`, `shape` is its batch-1 shape."""

    kind: OpKind
    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: Attrs = NoAttrs()
    weights_shape: tuple[int, ...] = ()
    init: Init = Init.NONE
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None


def sample_images(count: int, resolution: int, channels: int, seed: int) -> np.ndarray:
    """Return `count` smooth random images, float32 (count, res, res, channels) in [-1, 1].

    Each image sums blobs at a few scales (linear upsampling of random grids), mixes a
    shared luminance into every channel and adds a little pixel noise. Computed with
    elementwise operations and exact sums only: the same bits on every machine.
    """
    stream = Stream(seed, 0x1A6E5)
    out = np.zeros((count, resolution, resolution, channels))
    for grid, weight in ((2, 1.0), (4, 0.7), (8, 0.5), (16, 0.35), (32, 0.2)):
        size = min(grid, resolution)
        luma = stream.normal(0.0, 1.0, (count, size, size, 1))
        color = stream.normal(0.0, 1.0, (count, size, size, channels))
        field = _upsample(_upsample(luma + 0.5 * color, resolution, 1), resolution, 2)
        out += weight * field
    out += 0.05 * stream.normal(0.0, 1.0, out.shape)
    out -= exact_mean(out, (1, 2, 3), keepdims=True)
    peak = np.abs(out).max(axis=(1, 2, 3), keepdims=True)
    contrast = stream.uniform(0.6, 1.0, (count, 1, 1, 1))
    brightness = stream.uniform(-0.3, 0.3, (count, 1, 1, 1))
    return np.clip(out / peak * contrast + brightness, -1.0, 1.0).astype(np.float32)


def _upsample(grid: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Return `grid` linearly interpolated to `size` points along `axis` (ends aligned)."""
    points = grid.shape[axis]
    if points == 1 or size == 1:
        return np.repeat(grid.take([0], axis=axis), size, axis=axis)
    numerator = np.arange(size) * (points - 1)  # position i * (points-1) / (size-1), exact
    lower = np.minimum(numerator // (size - 1), points - 2)
    fraction = (numerator - lower * (size - 1)) / (size - 1)
    shape = [1] * grid.ndim
    shape[axis] = size
    fraction = fraction.reshape(shape)
    return (grid.take(lower, axis=axis) * (1.0 - fraction)
            + grid.take(lower + 1, axis=axis) * fraction)


def _pad(x: np.ndarray, p) -> np.ndarray:
    return np.pad(x, ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0)))


def windows(x: np.ndarray, a: ConvAttrs, kh: int, kw: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (i, j, strided NHWC view of the padded input) for every filter tap (i, j)."""
    x = _pad(x, a.padding)
    ho = (x.shape[1] - (kh - 1) * a.dilation_h - 1) // a.stride_h + 1
    wo = (x.shape[2] - (kw - 1) * a.dilation_w - 1) // a.stride_w + 1
    for i in range(kh):
        for j in range(kw):
            r, c = i * a.dilation_h, j * a.dilation_w
            yield i, j, x[:, r:r + (ho - 1) * a.stride_h + 1:a.stride_h,
                          c:c + (wo - 1) * a.stride_w + 1:a.stride_w, :]


def _conv(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    w, a = layer.weights, layer.attrs
    out_c, kh, kw, in_c = w.shape
    if (kh, kw, a.stride_h, a.stride_w) == (1, 1, 1, 1):
        cols = x
    else:  # im2col in (kh, kw, in_c) order, the flattening order of the weights
        cols = np.concatenate([v for _, _, v in windows(x, a, kh, kw)], axis=-1)
    flat = cols.reshape(-1, cols.shape[-1])
    out = exact_dot(flat, w.reshape(out_c, -1)) + layer.bias
    return out.astype(np.float32).reshape(*cols.shape[:-1], out_c)


def _depthwise(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    w, a = layer.weights, layer.attrs
    if a.depth_multiplier != 1:
        x = np.repeat(x, a.depth_multiplier, axis=-1)
    out = None
    for i, j, view in windows(x, a, w.shape[1], w.shape[2]):
        term = view * w[0, i, j]
        out = term if out is None else out + term
    return out + layer.bias


def _fully_connected(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    out = exact_dot(x.reshape(x.shape[0], -1), layer.weights) + layer.bias
    return out.astype(np.float32)


def _mean(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    a = layer.attrs
    return exact_mean(x, tuple(a.axes), keepdims=a.keep_dims).astype(np.float32)


def _average_pool(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    a = layer.attrs
    if (a.padding.top, a.padding.bottom, a.padding.left, a.padding.right) != (0, 0, 0, 0):
        raise UnsupportedError(f"{layer.name}: float AVERAGE_POOL_2D supports VALID padding only")
    conv = ConvAttrs(a.stride_h, a.stride_w, a.padding)
    views = [v for _, _, v in windows(x, conv, a.filter_h, a.filter_w)]
    return sum(views) / len(views)


def _softmax(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    e = np.exp(layer.attrs.beta * (x - x.max(axis=-1, keepdims=True)))
    return e / e.sum(axis=-1, keepdims=True)


_CLAMPS = {Activation.NONE: (-np.inf, np.inf), Activation.RELU: (0.0, np.inf),
           Activation.RELU6: (0.0, 6.0), Activation.RELU_N1_TO_1: (-1.0, 1.0)}

# kind -> float kernel(layer, *inputs) -> pre-activation; `activate` applies the clamp
KERNELS: dict[OpKind, Callable[..., np.ndarray]] = {
    OpKind.CONV_2D: _conv,
    OpKind.DEPTHWISE_CONV_2D: _depthwise,
    OpKind.FULLY_CONNECTED: _fully_connected,
    OpKind.ADD: lambda layer, a, b: a + b,
    OpKind.MEAN: _mean,
    OpKind.AVERAGE_POOL_2D: _average_pool,
    OpKind.RESHAPE: lambda layer, x: x.reshape((x.shape[0], *layer.shape[1:])),
    OpKind.SOFTMAX: _softmax,
}


def activate(layer: FloatLayer, z: np.ndarray) -> np.ndarray:
    """Return z clamped by the layer's fused activation."""
    lo, hi = _CLAMPS[getattr(layer.attrs, "activation", Activation.NONE)]
    return np.clip(z, lo, hi) if np.isfinite(lo) or np.isfinite(hi) else z


def last_uses(layers: list[FloatLayer]) -> dict[str, int]:
    """Return {tensor name: index of the last layer reading it}."""
    last = {}
    for i, layer in enumerate(layers):
        for name in layer.inputs:
            last[name] = i
    return last


def forward(layers: list[FloatLayer], images: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """Run calibrated layers on float images; yield (tensor name, value), input first.

    Values are freed after their last use, so callers keep only what they need.
    """
    values = {INPUT: images.astype(np.float32)}
    last = last_uses(layers)
    yield INPUT, values[INPUT]
    for i, layer in enumerate(layers):
        out = activate(layer, KERNELS[layer.kind](layer, *(values[n] for n in layer.inputs)))
        values[layer.name] = out.astype(np.float32, copy=False)
        for name in layer.inputs:
            if last[name] == i:
                del values[name]
        yield layer.name, values[layer.name]
