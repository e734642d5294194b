"""The front door for ONNX nodes: what the ONNX readers compute with, checked before they do.

`check_node` runs on every node `read_onnx` returns (the QDQ, QOperator and float readers
all start there): a named first output, the inputs the quantisation operators need, and
attributes of the type the translators read (an INTS attribute where they iterate, an INT
where they compare). `check_qoperator` runs on every QOperator node before the rewrite to
QDQ (onnx_qoperator), with the node's row of `onnx_qoperator.RULES`: every operand, scale
and zero point present; scales and zero points constant initializers, scales finite and
within LIMITS, zero points 8-bit (int32 for a bias) with one per scale; an int32 bias with
one value per weight scale. The QDQ reader (onnx_qdq) checks the same fields of the
QuantizeLinear/DequantizeLinear nodes the rewrite makes, with the file's own. Messages name
the file, the node by its index and the file's operator, the input or attribute and value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mnv2gen.errors import ModelError, quoted
from mnv2gen.frontend.validate_rules import HINT_LIMITS, LIMITS

_INT, _INTS, _FLOAT, _TEXT = "an integer", "a list of integers", "a number", "a string"
# Attributes the translators and the rewrite read, and the type they read them as.
ATTRIBUTE_TYPES: Mapping[str, str] = {
    "axis": _INT, "group": _INT, "keepdims": _INT, "transA": _INT, "transB": _INT,
    "channels_last": _INT, "ceil_mode": _INT, "allowzero": _INT, "block_size": _INT,
    "saturate": _INT, "to": _INT, "training_mode": _INT, "noop_with_empty_axes": _INT,
    "start": _INT, "end": _INT, "output_dtype": _INT, "count_include_pad": _INT,
    "axes": _INTS, "perm": _INTS, "pads": _INTS, "strides": _INTS, "dilations": _INTS,
    "kernel_shape": _INTS,
    "alpha": _FLOAT, "beta": _FLOAT, "epsilon": _FLOAT,
    "auto_pad": _TEXT, "mode": _TEXT,
}
# Operators whose inputs the readers index: the fewest inputs each must have.
MIN_INPUTS: Mapping[str, int] = {"QuantizeLinear": 2, "DequantizeLinear": 2}
_ZERO_POINT_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))


def _fail(label: str, node, what: str, hint: str = "the file is corrupt") -> ModelError:
    return ModelError(f"{label}: {node.describe()} {what}", hint)


def _has_type(value, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if kind == _INTS:
        return isinstance(value, (tuple, list)) and all(_has_type(v, _INT) for v in value)
    if kind == _FLOAT:
        return (isinstance(value, (int, float, np.integer, np.floating))
                and bool(np.isfinite(value)))
    return isinstance(value, str)


def check_node(label: str, node) -> None:
    """Raise ModelError when `node` (an onnx_graph.Node) has no named first output, fewer
    inputs than MIN_INPUTS asks, or an attribute of ATTRIBUTE_TYPES of another type."""
    if not node.outputs or not node.outputs[0]:
        raise _fail(label, node, "has no output")
    need = MIN_INPUTS.get(node.op_type, 0)
    if len(node.inputs) < need or any(not name for name in node.inputs[:need]):
        raise _fail(label, node, f"has {len(node.inputs)} inputs; it needs at least {need}")
    for name, value in node.attrs.items():
        kind = ATTRIBUTE_TYPES.get(name)
        if kind is not None and not _has_type(value, kind):
            raise _fail(label, node, f"attribute {quoted(name)} is {quoted(value, 40)}, not "
                        f"{kind}")


def _constant(label: str, node, consts: Mapping[str, np.ndarray], index: int,
              what: str) -> np.ndarray:
    name = node.inputs[index] if index < len(node.inputs) else ""
    if name not in consts:
        raise _fail(label, node, f"input {index} ({what}, {quoted(name)}) is "
                    f"{'missing' if not name else 'not a constant initializer'}",
                    "QOperator models state scales, zero points and biases as initializers")
    return np.asarray(consts[name])


def _scale(label: str, node, consts, index: int) -> np.ndarray:
    scale = _constant(label, node, consts, index, "a scale")
    if scale.dtype.kind != "f" or scale.ndim > 1 or not scale.size:
        raise _fail(label, node, f"input {index} (a scale) is {scale.dtype} of shape "
                    f"{scale.shape}, not a float scalar or vector")
    values = scale.astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(values) & (values >= LIMITS.min_scale)
                  & (values <= LIMITS.max_scale)):
        raise _fail(label, node, f"input {index} has scale {values[:4].tolist()}; scales "
                    f"must be finite and from {LIMITS.min_scale:.3g} to "
                    f"{LIMITS.max_scale:.3g}", HINT_LIMITS)
    return scale


def _zero_point(label: str, node, consts, index: int, scale: np.ndarray) -> None:
    if index >= len(node.inputs) or not node.inputs[index]:
        return  # optional: ONNX's default is 0 (uint8)
    zp = _constant(label, node, consts, index, "a zero point")
    if zp.dtype not in _ZERO_POINT_TYPES:
        raise _fail(label, node, f"input {index} (a zero point) is {zp.dtype}",
                    "QOperator activations and weights are int8 or uint8")
    if zp.ndim > 1 or zp.size not in (1, scale.size):
        raise _fail(label, node, f"has {scale.size} scales and {zp.size} zero points "
                    f"(input {index})")


def check_qoperator(label: str, node, consts: Mapping[str, np.ndarray],
                    operands: tuple[tuple[int, int, int], ...], output: tuple[int, int] | None,
                    bias: int | None) -> None:
    """Raise ModelError when QOperator `node` lacks what its rule reads: `operands` (data,
    scale, zero point) input indices, `output` (scale, zero point) indices, `bias` the index
    of an optional int32 bias at operand 0's scale x operand 1's scale."""
    if not operands:
        raise _fail(label, node, f"has {len(node.inputs)} inputs; it needs operands")
    scales = []
    for data, s, z in operands:
        if data >= len(node.inputs) or not node.inputs[data]:
            raise _fail(label, node, f"has no input {data} (an operand)")
        scales.append(_scale(label, node, consts, s))
        _zero_point(label, node, consts, z, scales[-1])
    if scales[0].size != 1:
        raise _fail(label, node, f"quantises its input per channel ({scales[0].size} scales)",
                    "activations are quantised per tensor")
    if output is not None:
        out_scale = _scale(label, node, consts, output[0])
        if out_scale.size != 1:
            raise _fail(label, node, f"quantises its output per channel ({out_scale.size} "
                        "scales)", "activations are quantised per tensor")
        _zero_point(label, node, consts, output[1], out_scale)
    if bias is not None and bias < len(node.inputs) and node.inputs[bias]:
        values = _constant(label, node, consts, bias, "a bias")
        weights = scales[1].size if len(scales) > 1 else 1
        if values.dtype != np.int32 or values.ndim != 1 or weights not in (1, values.size):
            raise _fail(label, node, f"has a {values.dtype} bias of shape {values.shape} for "
                        f"{weights} weight scale(s)", "QOperator biases are int32 vectors")
