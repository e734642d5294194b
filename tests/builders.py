"""Tiny hand-built IR graphs for pass, planner and kernel tests."""

from __future__ import annotations

import numpy as np

from mnv2gen.ir import (
    Activation,
    ConvAttrs,
    DType,
    Graph,
    MeanAttrs,
    Op,
    OpKind,
    PadAttrs,
    Padding,
    QuantParams,
    Tensor,
    TransposeAttrs,
)

ACT_Q = QuantParams((0.05,), (-3,))


def act(name: str, shape, quant=ACT_Q) -> Tensor:
    """Return an int8 activation tensor."""
    return Tensor(name, tuple(shape), DType.INT8, quant)


def conv_weights(name: str, shape, axis: int, rng) -> list[Tensor]:
    """Return [weights, bias] with per-channel symmetric quantisation along `axis`."""
    channels = shape[axis]
    w = rng.integers(-127, 128, shape).astype(np.int8)
    scales = tuple(float(np.float32(s)) for s in rng.uniform(0.002, 0.02, channels))
    b = rng.integers(-2000, 2000, channels).astype(np.int32)
    bias_scales = tuple(float(np.float32(np.float32(0.05) * np.float32(s))) for s in scales)
    return [Tensor(f"{name}_w", tuple(shape), DType.INT8, QuantParams(scales, (0,) * channels,
                                                                       axis), w),
            Tensor(f"{name}_b", (channels,), DType.INT32, QuantParams(bias_scales,
                                                                      (0,) * channels), b)]


def pad_then_depthwise(seed: int = 0, size: int = 9, channels: int = 4) -> Graph:
    """Return x -> PAD(0,1,0,1) -> depthwise 3x3 stride 2 VALID -> y."""
    rng = np.random.default_rng(seed)
    out = (size + 1 - 3) // 2 + 1
    t = [act("x", (1, size, size, channels)), act("xp", (1, size + 1, size + 1, channels)),
         act("y", (1, out, out, channels)), *conv_weights("dw", (1, 3, 3, channels), 3, rng)]
    ops = (
        Op(OpKind.PAD, "pad", ("x",), ("xp",), PadAttrs(((0, 0), (0, 1), (0, 1), (0, 0))), 0),
        Op(OpKind.DEPTHWISE_CONV_2D, "dw", ("xp", "dw_w", "dw_b"), ("y",),
           ConvAttrs(2, 2, Padding(), Activation.RELU6), 1),
    )
    return Graph("pad_dw", {x.name: x for x in t}, ops, ("x",), ("y",))


def nchw_pooling_head(seed: int = 0) -> Graph:
    """Return x(1,3,3,8) -> TRANSPOSE(0,3,1,2) -> MEAN(3) -> MEAN(2) -> y(1,8)."""
    q2 = QuantParams((0.04,), (5,))
    t = [act("x", (1, 3, 3, 8)), act("xt", (1, 8, 3, 3)), act("m1", (1, 8, 3), q2),
         act("y", (1, 8), QuantParams((0.03,), (-7,)))]
    ops = (
        Op(OpKind.TRANSPOSE, "tr", ("x",), ("xt",), TransposeAttrs((0, 3, 1, 2)), 0),
        Op(OpKind.MEAN, "mean_w", ("xt",), ("m1",), MeanAttrs((3,), False), 1),
        Op(OpKind.MEAN, "mean_h", ("m1",), ("y",), MeanAttrs((2,), False), 2),
    )
    return Graph("nchw_head", {x.name: x for x in t}, ops, ("x",), ("y",))


def tiny_mobilenet_v2(resolution: int = 32, classes: int = 4, seed: int = 0) -> Graph:
    """Return a synthesized MobileNetV2-style int8 graph small enough for 16 KiB of RAM and
    256 KiB of flash (a Cortex-M0 nRF51): stem, a t=1 block, a strided t=6 block, a t=4
    block with its residual ADD, a strided t=4 block, conv_last, MEAN, FC, softmax. Weights
    get the zoo's trained-looking statistics (`zoo_calibrate`) and quantisation."""
    from mnv2gen.zoo import _Builder
    from mnv2gen.zoo_calibrate import calibrated_graph
    from mnv2gen.zoo_float import INPUT, sample_images

    relu6, linear = Activation.RELU6, Activation.NONE
    b = _Builder(resolution, 3)
    x = b.conv("stem", INPUT, 8, 3, 2, relu6)
    x = b.conv("b0_project", b.depthwise("b0_depthwise", x, 1, relu6), 8, 1, 1, linear)
    for name, t, out_c, stride in (("b1", 6, 16, 2), ("b2", 4, 16, 1), ("b3", 4, 24, 2)):
        y = b.conv(f"{name}_expand", x, b.shapes[x][-1] * t, 1, 1, relu6)
        y = b.conv(f"{name}_project", b.depthwise(f"{name}_depthwise", y, stride, relu6),
                   out_c, 1, 1, linear)
        x = b.add(f"{name}_add", x, y) if stride == 1 and b.shapes[x] == b.shapes[y] else y
    x = b.conv("conv_last", x, 64, 1, 1, relu6)
    x = b.fully_connected("logits", b.global_mean("global_pool", x), classes)
    b.softmax("predictions", x)
    graph = calibrated_graph(f"tiny_mobilenet_v2_{resolution}", b.layers,
                             sample_images(8, resolution, 3, seed), seed)
    graph.verify()
    return graph
