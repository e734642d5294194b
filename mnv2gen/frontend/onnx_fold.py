"""Constant folding of ONNX shape arithmetic (Shape/Gather/Concat/Unsqueeze/Cast chains).

Exporters compute Reshape targets at run time from `Shape` of an activation; with static
shapes all of it is constant. `fold_node` evaluates a node whose inputs are constants
(or whose only non-constant input feeds `Shape`) with NumPy, following the ONNX spec.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnv2gen.errors import UnsupportedError
from mnv2gen.frontend.onnx_graph import Node, OnnxGraph, take_attrs

Args = list  # one np.ndarray per node input; None for an omitted optional input


def _np_dtype(onnx_type: int) -> np.dtype:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def _constant(attrs, args, opset):
    values = [(k, v) for k, v in attrs.items() if v is not None]
    if len(values) != 1:
        raise ValueError("Constant needs exactly one value attribute")
    kind, v = values[0]
    dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
             "value_ints": np.int64}.get(kind)
    if kind in ("value_string", "value_strings", "sparse_value"):
        raise ValueError(f"Constant {kind} is not supported")
    return np.asarray(v, dtype=dtype) if dtype else np.asarray(v)


def _axes(attrs, args, opset, since: int) -> list[int] | None:
    """Return `axes` from the attribute (before opset `since`) or the second input."""
    if opset >= since:
        return None if len(args) < 2 or args[1] is None else [int(a) for a in args[1]]
    return None if attrs.get("axes") is None else [int(a) for a in attrs["axes"]]


def _unsqueeze(attrs, args, opset):
    x = args[0]
    axes = _axes(attrs, args, opset, 13) or []
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = np.expand_dims(x, a)
    return x


def _squeeze(attrs, args, opset):
    x = args[0]
    axes = _axes(attrs, args, opset, 13)
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes))


def _slice(attrs, args, opset):
    x, starts, ends = args[0], args[1], args[2]
    axes = args[3] if len(args) > 3 and args[3] is not None else range(len(starts))
    steps = args[4] if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=False):
        index[int(a) % x.ndim] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def reshape_target(shape: tuple[int, ...], target, allowzero: int) -> tuple[int, ...]:
    """Return ONNX Reshape's output shape for an input of `shape` (0 copies, -1 infers)."""
    dims = [int(d) for d in np.asarray(target).reshape(-1)]
    if not allowzero:
        dims = [shape[i] if d == 0 else d for i, d in enumerate(dims)]
    if dims.count(-1) > 1:
        raise ValueError("Reshape target has more than one -1")
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
        total = int(np.prod(shape, dtype=np.int64))
        if known == 0 or total % known:
            raise ValueError(f"cannot reshape {shape} to {dims}")
        dims[dims.index(-1)] = total // known
    if int(np.prod(dims, dtype=np.int64)) != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"cannot reshape {shape} to {dims}")
    return tuple(dims)


def _div(a, b):
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return (np.trunc(a / b)).astype(np.result_type(a, b))  # ONNX truncates integer Div
    return a / b


def _binary(fn):
    return lambda attrs, args, opset: np.asarray(fn(args[0], args[1])).astype(
        np.result_type(args[0], args[1]))


# op type -> (known attributes with defaults, evaluator(attrs, args, opset))
FOLDERS: dict[str, tuple[dict, Callable]] = {
    "Constant": ({"value": None, "value_float": None, "value_floats": None, "value_int": None,
                  "value_ints": None, "value_string": None, "value_strings": None,
                  "sparse_value": None}, _constant),
    "Identity": ({}, lambda attrs, args, opset: args[0]),
    "Cast": ({"to": None, "saturate": 1},
             lambda attrs, args, opset: args[0].astype(_np_dtype(attrs["to"]))),
    "Gather": ({"axis": 0}, lambda attrs, args, opset: np.take(
        args[0], args[1].astype(np.int64) % args[0].shape[attrs["axis"]], axis=attrs["axis"])),
    "Concat": ({"axis": None}, lambda attrs, args, opset: np.concatenate(
        [np.atleast_1d(a) for a in args], axis=attrs["axis"])),
    "Unsqueeze": ({"axes": None}, _unsqueeze),
    "Squeeze": ({"axes": None}, _squeeze),
    "Reshape": ({"allowzero": 0}, lambda attrs, args, opset: args[0].reshape(
        reshape_target(args[0].shape, args[1], attrs["allowzero"]))),
    "Flatten": ({"axis": 1}, lambda attrs, args, opset: args[0].reshape(
        int(np.prod(args[0].shape[:attrs["axis"]], dtype=np.int64)), -1)),
    "Transpose": ({"perm": None}, lambda attrs, args, opset: np.transpose(args[0], attrs["perm"])),
    "Slice": ({}, _slice),
    "ConstantOfShape": ({"value": None}, lambda attrs, args, opset: np.full(
        tuple(int(d) for d in args[0]), 0.0 if attrs["value"] is None
        else attrs["value"].reshape(-1)[0], dtype=np.float32 if attrs["value"] is None
        else attrs["value"].dtype)),
    "Add": ({}, _binary(np.add)),
    "Sub": ({}, _binary(np.subtract)),
    "Mul": ({}, _binary(np.multiply)),
    "Div": ({}, lambda attrs, args, opset: _div(args[0], args[1])),
    "Sqrt": ({}, lambda attrs, args, opset: np.sqrt(args[0])),
    "Reciprocal": ({}, lambda attrs, args, opset: (1 / args[0]).astype(args[0].dtype)),
}


def _shape(graph: OnnxGraph, node: Node, shape: tuple[int, ...]) -> np.ndarray:
    attrs = take_attrs(graph, node, {"start": 0, "end": None})
    return np.asarray(shape[attrs["start"]:attrs["end"]], dtype=np.int64)


def fold_node(graph: OnnxGraph, node: Node, args: Args,
              input_shape: tuple[int, ...] | None) -> np.ndarray | None:
    """Return the constant output of `node`, or None when it is not constant.

    `args` holds the constant value of each input (None for non-constant or omitted
    inputs); `input_shape` is the ONNX shape of the first input (for `Shape`).
    """
    if node.op_type == "Shape" and input_shape is not None:
        return _shape(graph, node, input_shape)
    if node.op_type not in FOLDERS or len(node.outputs) != 1:
        return None
    present = [a for name, a in zip(node.inputs, args, strict=True) if name]
    if not present or any(a is None for a in present):
        return None if node.op_type != "Constant" else _evaluate(graph, node, args)
    return _evaluate(graph, node, args)


def _evaluate(graph: OnnxGraph, node: Node, args: Args) -> np.ndarray:
    known, fn = FOLDERS[node.op_type]
    attrs = take_attrs(graph, node, known)
    try:
        result = np.asarray(fn(attrs, args, graph.opset))
    except (ValueError, IndexError, TypeError, np.exceptions.AxisError) as exc:
        raise UnsupportedError(f"{graph.label}: {node.describe()} cannot be constant-folded "
                               f"({exc})", "the shape arithmetic is inconsistent") from None
    result = np.array(result)
    result.flags.writeable = False
    return result
