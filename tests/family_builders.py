"""Tiny IR graphs with one operator of the family's heads and edges each, for the oracle
(reference == TFLite Micro) and C kernel (C == reference) tests.

Every builder returns a verified Graph whose single input is int8 (uint8 where stated)
and whose operators carry source_index = position, so TFLM's per-operator outputs line up.
"""

from __future__ import annotations

import numpy as np

from mnv2gen.ir import (
    Activation,
    AddAttrs,
    AxisAttrs,
    ConcatAttrs,
    DType,
    Graph,
    NoAttrs,
    Op,
    OpKind,
    PadAttrs,
    Padding,
    PoolAttrs,
    QuantParams,
    ResizeAttrs,
    Tensor,
    TransposeAttrs,
)


def q(scale: float, zero_point: int) -> QuantParams:
    """Return per-tensor quantisation with a float32-exact scale."""
    return QuantParams((float(np.float32(scale)),), (zero_point,))


def t8(name: str, shape, quant: QuantParams, dtype=DType.INT8, data=None) -> Tensor:
    """Return a quantised int8 (or `dtype`) tensor, constant when `data` is given."""
    if data is not None:
        data = np.asarray(data, dtype=dtype.np).reshape(shape)
        data.flags.writeable = False
    return Tensor(name, tuple(shape), dtype, quant, data)


def graph(name: str, tensors, ops, inputs=("x",), outputs=("y",)) -> Graph:
    """Return the verified graph of `tensors` and `ops` (ops get source indices)."""
    ops = tuple(Op(o.kind, o.name, o.inputs, o.outputs, o.attrs, i) for i, o in enumerate(ops))
    g = Graph(name, {t.name: t for t in tensors}, ops, tuple(inputs), tuple(outputs))
    g.verify()
    return g


def binary(kind: OpKind, shape_1, shape_2, q1, q2, qy, activation=Activation.NONE,
           seed=0) -> Graph:
    """Return x (op) w -> y, w a random constant of shape_2 (the scalar and channel-vector
    constants of MobileNetV3's preprocessing and hard sigmoid)."""
    rank = max(len(shape_1), len(shape_2))
    pad1 = (1,) * (rank - len(shape_1)) + tuple(shape_1)
    pad2 = (1,) * (rank - len(shape_2)) + tuple(shape_2)
    out_shape = tuple(max(a, b) for a, b in zip(pad1, pad2, strict=True))
    data = np.random.default_rng(seed).integers(-128, 128, shape_2)
    tensors = [t8("x", shape_1, q1), t8("w", shape_2, q2, data=data), t8("y", out_shape, qy)]
    return graph(kind.value.lower(), tensors,
                 [Op(kind, "op", ("x", "w"), ("y",), AddAttrs(activation))])


def binary_computed(kind: OpKind, shape, activation=Activation.NONE) -> Graph:
    """Return s = LOGISTIC(x); y = x (op) s: two computed same-shape operands with
    different quantisations."""
    tensors = [t8("x", shape, q(0.06, -5)), t8("s", shape, q(1 / 256, -128)),
               t8("y", shape, q(0.05, 3))]
    return graph(f"{kind.value.lower()}_computed", tensors, [
        Op(OpKind.LOGISTIC, "sigmoid", ("x",), ("s",), NoAttrs()),
        Op(kind, "op", ("x", "s"), ("y",), AddAttrs(activation))])


def squeeze_excite(h=5, w=6, c=8, seed=0) -> Graph:
    """Return x -> MEAN(1,2 keep) -> MUL(x, mean) -> y: a per-channel vector broadcast."""
    from mnv2gen.ir import MeanAttrs

    tensors = [t8("x", (1, h, w, c), q(0.05, -3)), t8("m", (1, 1, 1, c), q(0.02, -10)),
               t8("y", (1, h, w, c), q(0.03, 4))]
    return graph("se", tensors, [
        Op(OpKind.MEAN, "mean", ("x",), ("m",), MeanAttrs((1, 2), True)),
        Op(OpKind.MUL, "mul", ("x", "m"), ("y",), AddAttrs())])


def unary(kind: OpKind, shape, qx, qy, attrs=None, out_shape=None,
          out_dtype=DType.INT8) -> Graph:
    """Return x -> op -> y (attrs: NoAttrs() unless given)."""
    attrs = NoAttrs() if attrs is None else attrs
    out = Tensor("y", tuple(out_shape or shape), out_dtype,
                 qy if out_dtype in (DType.INT8, DType.UINT8) else None)
    return graph(kind.value.lower(), [t8("x", shape, qx), out],
                 [Op(kind, "op", ("x",), ("y",), attrs)])


def resize(kind: OpKind, shape, height, width, align=False, half=False) -> Graph:
    """Return x -> RESIZE_* to (height, width) -> y (same quantisation)."""
    n, _, _, c = shape
    qx = q(0.07, 5)
    return unary(kind, shape, qx, qx, ResizeAttrs(height, width, align, half),
                 (n, height, width, c))


def pool(kind: OpKind, shape, filt, stride, padding: Padding, out_hw,
         activation=Activation.NONE) -> Graph:
    """Return x -> MAX/AVERAGE_POOL_2D -> y (same quantisation)."""
    qx = q(0.05, -7)
    return unary(kind, shape, qx, qx, PoolAttrs(*filt, *stride, padding, activation),
                 (shape[0], *out_hw, shape[3]))


def concat(shapes, axis: int, quants, qy) -> Graph:
    """Return x -> slices made by constants and x itself -> CONCATENATION -> y.

    Input 0 is the graph input; the others are constants (the oracle checks the copy
    arithmetic and, with differing quantisation, the requantisation pass)."""
    rng = np.random.default_rng(7)
    tensors = [t8("x", shapes[0], quants[0])]
    names = ["x"]
    for i, (shape, quant) in enumerate(zip(shapes[1:], quants[1:], strict=True)):
        tensors.append(t8(f"c{i}", shape, quant,
                          data=rng.integers(-128, 128, shape).astype(np.int8)))
        names.append(f"c{i}")
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    tensors.append(t8("y", out_shape, qy))
    return graph("concat", tensors, [Op(OpKind.CONCATENATION, "op", tuple(names), ("y",),
                                        ConcatAttrs(axis))])


def arg_max(shape, axis: int, dtype=DType.INT32) -> Graph:
    """Return x -> ARG_MAX(axis) -> y (int32 or int64 indices)."""
    out = tuple(d for i, d in enumerate(shape) if i != axis)
    return unary(OpKind.ARG_MAX, shape, q(0.1, 0), None, AxisAttrs(axis), out, dtype)


def transpose(shape, perm) -> Graph:
    """Return x -> TRANSPOSE(perm) -> y."""
    qx = q(0.05, 3)
    return unary(OpKind.TRANSPOSE, shape, qx, qx, TransposeAttrs(tuple(perm)),
                 tuple(shape[p] for p in perm))


def pad(shape, paddings) -> Graph:
    """Return x -> PAD -> y (pads with the zero point)."""
    qx = q(0.05, 9)
    return unary(OpKind.PAD, shape, qx, qx, PadAttrs(tuple(map(tuple, paddings))),
                 tuple(d + a + b for d, (a, b) in zip(shape, paddings, strict=True)))


def requantize_to_uint8(shape, qx, qy) -> Graph:
    """Return int8 x -> QUANTIZE -> uint8 y (a uint8 model output)."""
    return unary(OpKind.QUANTIZE, shape, qx, qy, NoAttrs(), shape, DType.UINT8)


def decoding_model(on_constants: bool):
    """Return x -> MEAN -> scores (int8), and a float tail after a DEQUANTIZE: box priors
    scaled and shifted in float32. With `on_constants` the tail reads a constant anchor
    table (foldable); otherwise it decodes the run-time scores (box decoding on data)."""
    from mnv2gen.ir import MeanAttrs

    rng = np.random.default_rng(9)
    source = "anchors" if on_constants else "scores"
    f32 = lambda name, shape, data=None: Tensor(  # noqa: E731
        name, shape, DType.FLOAT32, None,
        None if data is None else np.asarray(data, np.float32).reshape(shape))
    tensors = [t8("x", (1, 4, 4, 4), q(0.05, -3)), t8("scores", (1, 4), q(0.04, 2)),
               t8("anchors", (1, 4), q(0.01, 0), data=rng.integers(-100, 100, (1, 4))),
               f32("real", (1, 4)), f32("gain", (4,), rng.uniform(0.5, 2, 4)),
               f32("scaled", (1, 4)), f32("offset", (4,), rng.uniform(-1, 1, 4)),
               f32("boxes", (1, 4))]
    ops = [Op(OpKind.MEAN, "pool", ("x",), ("scores",), MeanAttrs((1, 2), False)),
           Op(OpKind.DEQUANTIZE, "dequantize", (source,), ("real",), NoAttrs()),
           Op(OpKind.MUL, "scale", ("real", "gain"), ("scaled",), AddAttrs()),
           Op(OpKind.ADD, "shift", ("scaled", "offset"), ("boxes",), AddAttrs())]
    return graph("decoding", tensors, ops, ("x",), ("scores", "boxes"))
