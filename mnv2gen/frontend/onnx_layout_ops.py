"""ONNX operators that only move, reshape or reduce data: their float NHWC layers or aliases.

Handlers for `onnx_float_ops.HANDLERS`; each defines its node's output value through
the `Translator`, mapping ONNX axes through the value's layout.
"""

from __future__ import annotations

import math

import numpy as np

from mnv2gen.errors import quoted
from mnv2gen.frontend.onnx_fold import reshape_target
from mnv2gen.frontend.onnx_graph import Node, take_attrs
from mnv2gen.frontend.onnx_translator import Translator, Value, nhwc
from mnv2gen.ir import MeanAttrs, NoAttrs, OpKind, Padding, PoolAttrs, SoftmaxAttrs


def global_average_pool(tr: Translator, node: Node) -> None:
    """Define GlobalAveragePool: MEAN over H and W, keeping dims (NCHW input)."""
    take_attrs(tr.g, node, {})
    x = tr.act(node, 0)
    if not x.nchw:
        raise tr.fail(node, f"reads {x.shape} in NHWC layout; it pools axes 2 and 3 of NCHW")
    n, c, _, _ = x.shape
    tr.add_layer(node, OpKind.MEAN, (x.name,), (n, c, 1, 1), (n, 1, 1, c),
                 MeanAttrs((1, 2), True), nchw=True)


def average_pool(tr: Translator, node: Node) -> None:
    """Define AveragePool: MEAN when it covers the whole image, else an unpadded
    AVERAGE_POOL_2D (NCHW input)."""
    attrs = take_attrs(tr.g, node, {"auto_pad": "NOTSET", "ceil_mode": 0, "count_include_pad": 0,
                                    "dilations": None, "kernel_shape": None, "pads": None,
                                    "strides": None})
    x = tr.act(node, 0)
    if not x.nchw or len(x.shape) != 4:
        raise tr.fail(node, f"pools {x.shape} in NHWC layout; it pools axes 2 and 3 of NCHW")
    n, c, h, w = x.shape
    kh, kw = attrs["kernel_shape"] or (0, 0)
    sh, sw = attrs["strides"] or (1, 1)
    pads = tuple(attrs["pads"] or (0, 0, 0, 0))
    if attrs["auto_pad"] not in ("NOTSET", "VALID") or any(pads) or tuple(
            attrs["dilations"] or (1, 1)) != (1, 1):
        raise tr.fail(node, f"pools with padding {pads} / auto_pad {quoted(attrs['auto_pad'])} or "
                      "dilation", "supported: unpadded, undilated average pooling")
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    if attrs["ceil_mode"] and ((h - kh) % sh or (w - kw) % sw):
        raise tr.fail(node, "has ceil_mode=1 with a partial last window")
    if ho < 1 or wo < 1:
        raise tr.fail(node, f"has a {kh}x{kw} window larger than its {h}x{w} input")
    if (ho, wo) == (1, 1) and (kh, kw) == (h, w):
        tr.add_layer(node, OpKind.MEAN, (x.name,), (n, c, 1, 1), (n, 1, 1, c),
                     MeanAttrs((1, 2), True), nchw=True)
        return
    tr.add_layer(node, OpKind.AVERAGE_POOL_2D, (x.name,), (n, c, ho, wo), (n, ho, wo, c),
                 PoolAttrs(kh, kw, sh, sw, Padding()), nchw=True)


def reduce_mean(tr: Translator, node: Node) -> None:
    """Define ReduceMean: MEAN over the mapped axes (only H, W of NCHW tensors)."""
    known = {"keepdims": 1, "noop_with_empty_axes": 0}
    attrs = take_attrs(tr.g, node, {**known, "axes": None} if tr.g.opset < 18 else known)
    x = tr.act(node, 0)
    rank = len(x.shape)
    axes = attrs.get("axes") if tr.g.opset < 18 else tr.const(node, 1, "axes", optional=True)
    if (axes is None or not len(axes)) and attrs["noop_with_empty_axes"]:
        tr.define(node, x)
        return
    axes = sorted({int(a) % rank for a in (axes if axes is not None and len(axes) else
                                            range(rank))})
    if 0 in axes:
        raise tr.fail(node, f"reduces the batch axis of {x.shape}")
    if x.nchw and axes != [2, 3]:
        raise tr.fail(node, f"reduces axes {axes} of an NCHW tensor; only [2, 3] is supported")
    stored_axes = (1, 2) if x.nchw else tuple(axes)
    keep = bool(attrs["keepdims"])
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else \
        tuple(d for i, d in enumerate(x.shape) if i not in axes)
    stored = tuple(1 if i in stored_axes else d for i, d in enumerate(x.stored)) if keep else \
        tuple(d for i, d in enumerate(x.stored) if i not in stored_axes)
    tr.add_layer(node, OpKind.MEAN, (x.name,), shape, stored, MeanAttrs(stored_axes, keep),
                 nchw=x.nchw and keep)


def _new_shape(tr, node, x: Value) -> tuple[int, ...]:
    """Return the ONNX output shape of Reshape/Flatten/Squeeze/Unsqueeze on x."""
    op, opset = node.op_type, tr.g.opset
    if op == "Reshape":
        attrs = take_attrs(tr.g, node, {"allowzero": 0})
        return reshape_target(x.shape, tr.const(node, 1, "shape"), attrs["allowzero"])
    if op == "Flatten":
        axis = take_attrs(tr.g, node, {"axis": 1})["axis"] % (len(x.shape) + 1)
        return (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    attrs = take_attrs(tr.g, node, {"axes": None} if opset < 13 else {})
    axes = attrs.get("axes") if opset < 13 else tr.const(node, 1, "axes", optional=True)
    if op == "Squeeze":
        rank = len(x.shape)
        axes = [i for i, d in enumerate(x.shape) if d == 1] if axes is None else \
            sorted(int(a) % rank for a in axes)
        if any(x.shape[a] != 1 for a in axes):
            raise tr.fail(node, f"squeezes a dimension > 1 of {x.shape}")
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)
    if axes is None:
        raise tr.fail(node, "has no axes")
    rank = len(x.shape) + len(axes)
    shape = list(x.shape)
    for a in sorted(int(a) % rank for a in axes):
        shape.insert(a, 1)
    return tuple(shape)


def reshape(tr: Translator, node: Node) -> None:
    """Define Flatten/Reshape/Squeeze/Unsqueeze: an alias, a merge into the MEAN before,
    or a RESHAPE layer (never a change of element order)."""
    x = tr.act(node, 0)
    shape = _new_shape(tr, node, x)
    if x.nchw and math.prod(x.shape[2:]) != 1:
        raise tr.fail(node, f"reshapes an NCHW tensor {x.shape} with spatial size > 1, "
                      "which would need a layout transpose")
    if not shape or shape[0] != x.shape[0]:
        raise tr.fail(node, f"changes the batch dimension ({x.shape} -> {shape})")
    nchw = len(shape) == 4 and shape[2:] == (1, 1)
    stored = nhwc(shape) if nchw else shape
    if stored == x.stored:
        tr.define(node, Value(x.name, shape, stored, nchw))
        return
    index = tr.producer(x)
    mean = tr.layers[index] if index is not None else None
    if (mean is not None and mean.kind is OpKind.MEAN and mean.attrs.keep_dims
            and tr.last_reader(x) and stored == tuple(
                d for i, d in enumerate(mean.shape) if i not in mean.attrs.axes)):
        tr.replace_layer(index, shape=stored, attrs=MeanAttrs(mean.attrs.axes, False))
        tr.define(node, Value(x.name, shape, stored, nchw))
        return
    tr.add_layer(node, OpKind.RESHAPE, (x.name,), shape, stored, NoAttrs(), nchw)


def pad(tr: Translator, node: Node) -> None:
    """Define Pad: the same tensor with a pending zero padding for the next Conv."""
    attrs = take_attrs(tr.g, node, {"mode": "constant"})
    x = tr.act(node, 0, allow_pad=True)
    value = tr.const(node, 2, "constant_value", optional=True)
    if attrs["mode"] != "constant" or (value is not None and np.any(value != 0)):
        raise tr.fail(node, f"pads with mode {quoted(attrs['mode'])} value "
                      f"{None if value is None else value.tolist()}", "only zero padding folds")
    rank = len(x.shape)
    pads = [int(p) for p in tr.const(node, 1, "pads")]
    axes = tr.const(node, 3, "axes", optional=True)
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[i + len(axes)]
    h, w = (2, 3) if x.nchw else (1, 2)
    if rank != 4 or min(before + after) < 0 or any(
            before[i] or after[i] for i in range(4) if i not in (h, w)):
        raise tr.fail(node, f"pads {pads} on {x.shape}", "only non-negative spatial padding "
                      "before a Conv is supported")
    pt, pb, pl, pr = x.pad or (0, 0, 0, 0)
    shape = tuple(d + b + a for d, b, a in zip(x.shape, before, after, strict=True))
    tr.define(node, Value(x.name, shape, x.stored, x.nchw,
                          (pt + before[h], pb + after[h], pl + before[w], pr + after[w])))


def transpose(tr: Translator, node: Node) -> None:
    """Define Transpose: an alias that switches between NHWC and NCHW meaning."""
    perm = take_attrs(tr.g, node, {"perm": None})["perm"]
    x = tr.act(node, 0)
    perm = tuple(perm) if perm is not None else tuple(reversed(range(len(x.shape))))
    shape = tuple(x.shape[p] for p in perm)
    if perm == tuple(range(len(perm))):
        tr.define(node, x)
    elif len(perm) == 4 and not x.nchw and perm == (0, 3, 1, 2):
        tr.define(node, Value(x.name, shape, x.stored, True))
    elif x.nchw and perm == (0, 2, 3, 1):
        tr.define(node, Value(x.name, shape, x.stored, False))
    else:
        raise tr.fail(node, f"has perm {perm} on {'NCHW' if x.nchw else 'plain'} {x.shape}",
                      "only NHWC <-> NCHW layout transposes are supported")


def softmax(tr: Translator, node: Node) -> None:
    """Define Softmax over the channel axis: a SOFTMAX layer."""
    axis = take_attrs(tr.g, node, {"axis": -1 if tr.g.opset >= 13 else 1})["axis"]
    x = tr.act(node, 0)
    rank = len(x.shape)
    axis %= rank
    channels_last = axis == rank - 1 and not x.nchw
    if not (channels_last or (x.nchw and axis == 1 and x.shape[2:] == (1, 1))
            or (tr.g.opset < 13 and axis == 1 and rank == 2)):
        raise tr.fail(node, f"normalises axis {axis} of {x.shape}", "softmax over the "
                      "channel axis only")
    tr.add_layer(node, OpKind.SOFTMAX, (x.name,), x.shape, x.stored, SoftmaxAttrs(1.0), x.nchw)


def identity(tr: Translator, node: Node) -> None:
    """Define Identity/Dropout (inference): an alias of the input."""
    take_attrs(tr.g, node, {"seed": 0} if node.op_type == "Dropout" else {})
    if any(tr.readers[o] for o in node.outputs[1:] if o):
        raise tr.fail(node, "has its mask output read", "inference graphs do not use it")
    tr.define(node, tr.act(node, 0))
