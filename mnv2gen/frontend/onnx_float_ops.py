"""One handler per ONNX operator: how it becomes (or folds into) float NHWC layers.

Each handler reads its operands through the `Translator`, checks every attribute
(unknown ones are rejected by `take_attrs`) and defines its output value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from mnv2gen.errors import quoted
from mnv2gen.frontend.onnx_fold import FOLDERS
from mnv2gen.frontend.onnx_graph import Node, take_attrs
from mnv2gen.frontend.onnx_layout_ops import (
    average_pool,
    global_average_pool,
    identity,
    pad,
    reduce_mean,
    reshape,
    softmax,
    transpose,
)
from mnv2gen.frontend.onnx_translator import WEIGHTED, Translator, Value
from mnv2gen.frontend.validate import check_window
from mnv2gen.ir import (
    Activation,
    AddAttrs,
    ConvAttrs,
    FullyConnectedAttrs,
    OpKind,
    Padding,
)
from mnv2gen.shapes import conv_output_size, same_padding


def _float32(tr: Translator, node: Node, array: np.ndarray, what: str) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating):
        raise tr.fail(node, f"has {array.dtype} {what}; the float front end needs float "
                      "weights", "quantised models must be in QDQ format (see `mnv2gen "
                      "inspect`)")
    return np.asarray(array, dtype=np.float32)


def _conv_padding(tr, node, attrs, x: Value, kernel, strides, dilations) -> Padding:
    """Return the explicit padding: the Conv's own (pads or auto_pad) plus a pending Pad."""
    auto = attrs["auto_pad"]
    _, _, h, w = x.shape  # includes a pending Pad, as auto_pad sees it
    if auto == "NOTSET":
        pads = tuple(attrs["pads"] or (0, 0, 0, 0))
        if len(pads) != 4 or not all(isinstance(p, int) for p in pads):
            raise tr.fail(node, f"has pads {pads}", "a 2-D Conv has four integer pads")
        t, left, b, r = pads
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        (t, b), (left, r) = (same_padding(h, kernel[0], strides[0], dilations[0]),
                             same_padding(w, kernel[1], strides[1], dilations[1]))
        if auto == "SAME_LOWER":
            t, b, left, r = b, t, r, left
    elif auto == "VALID":
        t = b = left = r = 0
    else:
        raise tr.fail(node, f"has auto_pad {quoted(auto)}")
    if min(t, b, left, r) < 0:
        raise tr.fail(node, f"has negative padding {(t, left, b, r)}")
    pt, pb, pl, pr = x.pad or (0, 0, 0, 0)
    return Padding(t + pt, b + pb, left + pl, r + pr)


def _conv(tr: Translator, node: Node) -> None:
    attrs = take_attrs(tr.g, node, {"auto_pad": "NOTSET", "dilations": None, "group": 1,
                                    "kernel_shape": None, "pads": None, "strides": None})
    x = tr.act(node, 0, allow_pad=True)
    w = _float32(tr, node, tr.const(node, 1, "weights"), "weights")
    if w.ndim != 4 or len(x.shape) != 4:
        raise tr.fail(node, f"is a {w.ndim - 2}-D convolution", "only 2-D Conv is supported")
    if not x.nchw:
        raise tr.fail(node, f"reads {quoted(node.inputs[0])}, which is NHWC here; Conv needs NCHW")
    m, cg, kh, kw = w.shape
    n, c, _, _ = x.shape
    group, kernel = attrs["group"], (kh, kw)
    if attrs["kernel_shape"] is not None and tuple(attrs["kernel_shape"]) != kernel:
        raise tr.fail(node, f"kernel_shape {attrs['kernel_shape']} disagrees with weights "
                      f"{w.shape}")
    strides = tuple(attrs["strides"] or (1, 1))
    dilations = tuple(attrs["dilations"] or (1, 1))
    if len(strides) != 2 or len(dilations) != 2:
        raise tr.fail(node, f"has strides {strides} and dilations {dilations}",
                      "a 2-D Conv has two of each")
    check_window(tr.g.label, node.describe(), strides, dilations, kernel)
    padding = _conv_padding(tr, node, attrs, x, kernel, strides, dilations)
    if group == 1 and cg == c:
        kind, weights, multiplier = OpKind.CONV_2D, w.transpose(0, 2, 3, 1), 1
    elif group == c and cg == 1 and m % c == 0:
        kind, weights, multiplier = OpKind.DEPTHWISE_CONV_2D, w.transpose(1, 2, 3, 0), m // c
    else:
        raise tr.fail(node, f"has group={group} with {c} input channels and weights {w.shape}",
                      "supported: group=1 (CONV_2D) or group=input channels (depthwise)")
    if kernel == (1, 1) and strides == (1, 1) and padding != Padding():
        raise tr.fail(node, "is a 1x1 convolution with padding")
    _, h, wd, _ = x.stored
    ho = conv_output_size(h, kh, strides[0], padding.top, padding.bottom, dilations[0])
    wo = conv_output_size(wd, kw, strides[1], padding.left, padding.right, dilations[1])
    if ho < 1 or wo < 1:
        raise tr.fail(node, f"has an empty output ({ho}x{wo})")
    bias = tr.const(node, 2, "bias", optional=True)
    bias = np.zeros(m, np.float32) if bias is None else _float32(tr, node, bias, "bias")
    if bias.shape != (m,):
        raise tr.fail(node, f"has a bias of shape {bias.shape}, expected ({m},)")
    conv_attrs = ConvAttrs(strides[0], strides[1], padding, Activation.NONE, dilations[0],
                           dilations[1], multiplier)
    v = tr.add_layer(node, kind, (x.name,), (n, m, ho, wo), (n, ho, wo, m), conv_attrs,
                     nchw=True, weights=np.ascontiguousarray(weights), bias=bias.copy())
    tr.weight_sources[v.name] = (node.inputs[1], node.inputs[2] if len(node.inputs) > 2 else "")


def _channel_vector(tr, node, x: Value, const: np.ndarray) -> np.ndarray:
    """Return a constant that broadcasts along x's channels only, as a (C,) vector."""
    rank, axis = len(x.shape), x.channel_axis()
    c = np.asarray(const, dtype=np.float64)
    if c.ndim > rank:
        raise tr.fail(node, f"broadcasts a constant of shape {c.shape} over {x.shape}")
    full = (1,) * (rank - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(full) if i != axis) or full[axis] not in (1, x.shape[axis]):
        raise tr.fail(node, f"has a constant of shape {c.shape} that is not per-channel for "
                      f"{x.shape} (channel axis {axis})",
                      "only scalar or per-channel constants fold into the layer before")
    return np.broadcast_to(c.reshape(-1), (x.shape[axis],)).copy()


def _fold_affine(tr, node, x: Value, scale, shift, what: str) -> None:
    """Fold y = x * scale + shift (per channel) into the layer writing x."""
    index = tr.open_producer(node, x, WEIGHTED, what)
    layer = tr.layers[index]
    axis = 3 if layer.kind is OpKind.DEPTHWISE_CONV_2D else 0
    shape = [1] * layer.weights.ndim
    shape[axis] = -1
    w = layer.weights.astype(np.float64) * scale.reshape(shape)
    b = layer.bias.astype(np.float64) * scale + shift
    tr.replace_layer(index, weights=w.astype(np.float32), bias=b.astype(np.float32))
    tr.define(node, x)


def _batch_normalization(tr: Translator, node: Node) -> None:
    attrs = take_attrs(tr.g, node, {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0})
    if attrs["training_mode"] or any(node.outputs[1:]):
        raise tr.fail(node, "is in training mode", "export the model for inference")
    x = tr.act(node, 0)
    if not (x.nchw or len(x.shape) == 2):
        raise tr.fail(node, f"normalises axis 1 of {x.shape}, which is not the channel axis")
    gamma, beta, mean, var = (np.asarray(tr.const(node, i, n), np.float64).reshape(-1)
                              for i, n in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
    scale = gamma / np.sqrt(var + attrs["epsilon"])
    _fold_affine(tr, node, x, scale, beta - mean * scale, "BatchNormalization")


def _arithmetic(tr: Translator, node: Node) -> None:
    take_attrs(tr.g, node, {})
    if len(node.inputs) != 2:
        raise tr.fail(node, f"has {len(node.inputs)} inputs, expected 2")
    a, b = node.inputs
    if a in tr.values and b in tr.values:
        if node.op_type != "Add":
            raise tr.fail(node, "of two activations is not supported", "only Add of two "
                          "activations (a residual connection) is")
        x, y = tr.act(node, 0), tr.act(node, 1)
        if x.shape != y.shape or x.nchw != y.nchw:
            raise tr.fail(node, f"adds {x.shape} and {y.shape} (broadcasting unsupported)")
        tr.add_layer(node, OpKind.ADD, (x.name, y.name), x.shape, x.stored, AddAttrs(), x.nchw)
        return
    const_first = a in tr.consts
    x = tr.act(node, 1 if const_first else 0)
    vec = _channel_vector(tr, node, x, tr.const(node, 0 if const_first else 1, "operand"))
    ones, zeros = np.ones_like(vec), np.zeros_like(vec)
    if node.op_type == "Add":
        scale, shift = ones, vec
    elif node.op_type == "Mul":
        scale, shift = vec, zeros
    elif node.op_type == "Sub":
        scale, shift = (-ones, vec) if const_first else (ones, -vec)
    elif not const_first and np.all(vec != 0):  # Div by a constant
        scale, shift = 1.0 / vec, zeros
    else:
        raise tr.fail(node, "divides by an activation or by zero")
    _fold_affine(tr, node, x, scale, shift, f"{node.op_type} by a constant")


_CLAMPS = {(0.0, math.inf): Activation.RELU, (0.0, 6.0): Activation.RELU6,
           (-1.0, 1.0): Activation.RELU_N1_TO_1}


def _fuse_clamp(tr, node, low: float, high: float) -> None:
    x = tr.act(node, 0)
    if (low, high) == (-math.inf, math.inf):
        tr.define(node, x)
        return
    if (low, high) not in _CLAMPS:
        raise tr.fail(node, f"clamps to [{low}, {high}], which is no fused activation",
                      "supported: Relu, Clip(0, 6), Clip(-1, 1), Clip(0, inf)")
    index = tr.open_producer(node, x, (*WEIGHTED, OpKind.ADD), node.op_type)
    layer = tr.layers[index]
    tr.replace_layer(index, attrs=replace(layer.attrs, activation=_CLAMPS[(low, high)]))
    tr.define(node, x)


def _relu(tr: Translator, node: Node) -> None:
    take_attrs(tr.g, node, {})
    _fuse_clamp(tr, node, 0.0, math.inf)


def _clip(tr: Translator, node: Node) -> None:
    take_attrs(tr.g, node, {})
    bounds = [tr.const(node, i, "bound", optional=True) for i in (1, 2)]
    low = -math.inf if bounds[0] is None else float(np.asarray(bounds[0]).reshape(-1)[0])
    high = math.inf if bounds[1] is None else float(np.asarray(bounds[1]).reshape(-1)[0])
    _fuse_clamp(tr, node, low, high)


def _fully_connected(tr, node, x: Value, weights, bias) -> None:
    if len(x.shape) != 2:
        raise tr.fail(node, f"multiplies a {len(x.shape)}-D input {x.shape}; needs 2-D")
    if weights.shape[1] != x.shape[1]:
        raise tr.fail(node, f"has weights {weights.shape[::-1]} for an input {x.shape}")
    out = (x.shape[0], weights.shape[0])
    v = tr.add_layer(node, OpKind.FULLY_CONNECTED, (x.name,), out, out, FullyConnectedAttrs(),
                     weights=np.ascontiguousarray(weights, np.float32),
                     bias=np.asarray(bias, np.float32))
    return v


def _gemm(tr: Translator, node: Node) -> None:
    attrs = take_attrs(tr.g, node, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0})
    if attrs["transA"]:
        raise tr.fail(node, "has transA=1", "the activation must be the left operand")
    x = tr.act(node, 0)
    b = _float32(tr, node, tr.const(node, 1, "weights (B)"), "weights")
    if b.ndim != 2:
        raise tr.fail(node, f"has weights of shape {b.shape}")
    w = (b if attrs["transB"] else b.T) * np.float32(attrs["alpha"])
    c = tr.const(node, 2, "bias (C)", optional=True)
    bias = np.zeros(w.shape[0], np.float32)
    if c is not None:
        c = _float32(tr, node, c, "bias")
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise tr.fail(node, f"has a bias of shape {c.shape} for {w.shape[0]} outputs")
        bias = bias + np.float32(attrs["beta"]) * c.reshape(-1)
    v = _fully_connected(tr, node, x, w, bias)
    tr.weight_sources[v.name] = (node.inputs[1], node.inputs[2] if len(node.inputs) > 2 else "")


def _matmul(tr: Translator, node: Node) -> None:
    take_attrs(tr.g, node, {})
    x = tr.act(node, 0)
    b = _float32(tr, node, tr.const(node, 1, "weights (B)"), "weights")
    if b.ndim != 2:
        raise tr.fail(node, f"has weights of shape {b.shape}")
    v = _fully_connected(tr, node, x, b.T, np.zeros(b.shape[1], np.float32))
    tr.weight_sources[v.name] = (node.inputs[1], "")


HANDLERS: dict[str, Callable[[Translator, Node], None]] = {
    "Conv": _conv, "BatchNormalization": _batch_normalization,
    "Add": _arithmetic, "Sub": _arithmetic, "Mul": _arithmetic, "Div": _arithmetic,
    "Relu": _relu, "Clip": _clip,
    "GlobalAveragePool": global_average_pool, "AveragePool": average_pool,
    "ReduceMean": reduce_mean,
    "Flatten": reshape, "Reshape": reshape, "Squeeze": reshape, "Unsqueeze": reshape,
    "Gemm": _gemm, "MatMul": _matmul, "Pad": pad, "Transpose": transpose, "Softmax": softmax,
    "Identity": identity, "Dropout": identity,
}
SUPPORTED = ", ".join(sorted(set(HANDLERS) | set(FOLDERS) | {"Shape"}))
