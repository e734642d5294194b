"""Reading an ONNX file into `OnnxGraph`: nodes, constants, the input and output names.

This module knows protobuf and nothing about operators' meaning. The translators
(`onnx_float`, `onnx_qdq`) work on `OnnxGraph`, a small immutable view with plain
NumPy constants, so they can also be handed graphs rewritten in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from mnv2gen.errors import MnvError, ModelError, UnsupportedError, bare, quoted
from mnv2gen.frontend.validate import check_shape
from mnv2gen.frontend.validate_onnx import check_node

MIN_OPSET = 11      # what the translators read; older files are upgraded to UPGRADE_OPSET
OLDEST_OPSET = 7    # onnx.version_converter upgrades opsets 7-10 reliably
UPGRADE_OPSET = 13
_FLOAT = 1  # onnx.TensorProto.FLOAT
# onnxruntime's QOperator format: integer operators instead of QDQ around float ones.
# The standard ones are in the default domain, the rest in onnxruntime's com.microsoft.
QOPERATORS = frozenset({
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearSoftmax", "QLinearConcat", "QLinearSigmoid",
    "QLinearLeakyRelu", "QLinearReduceMean", "QLinearWhere", "QGemm"})
# Dynamic quantisation: activation scales computed at run time (not compilable to int8).
DYNAMIC_QUANT = frozenset({
    "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat", "DynamicQuantizeLSTM", "QAttention"})
_MS_DOMAIN = "com.microsoft"


@dataclass(frozen=True)
class Node:
    """One ONNX node; `index` is its position in the file (used in every message)."""

    index: int
    op_type: str
    domain: str
    inputs: tuple[str, ...]  # "" marks an omitted optional input
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    origin: str = ""  # the file's operator when a rewrite (QOperator -> QDQ) made this node

    def describe(self) -> str:
        """Return 'node N (OpType)' for messages (the file's operator type)."""
        return f"node {self.index} ({bare(self.origin or self.op_type)})"


@dataclass(frozen=True, eq=False)
class OnnxGraph:
    """A parsed ONNX model with one float input and one output (shapes are static)."""

    label: str
    name: str
    opset: int
    nodes: tuple[Node, ...]
    constants: Mapping[str, np.ndarray]
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    sha256: str
    notes: tuple[str, ...] = ()  # what reading changed (generated text, see Graph.notes)

    def __post_init__(self) -> None:
        object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))

    def replace(self, **changes) -> OnnxGraph:
        """Return a copy with the given fields replaced."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        fields.update(changes)
        return OnnxGraph(**fields)


def _text(value) -> str:
    """Return a protobuf string field as str: proto2 hands invalid UTF-8 over as bytes."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def take_attrs(graph: OnnxGraph, node: Node, known: Mapping[str, Any]) -> dict[str, Any]:
    """Return `known` (attribute -> default) updated with the node's attributes.

    Raises UnsupportedError for an attribute `known` does not list: nothing is skipped.
    """
    unknown = sorted(set(node.attrs) - set(known))
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise UnsupportedError(
            f"{graph.label}: {node.describe()} has attribute {quoted(unknown[0])}, which mnv2gen "
            f"does not handle", f"attributes handled for {bare(node.op_type)}: {listed}")
    values = dict(known)
    values.update(node.attrs)
    return values


def _attribute_value(attr) -> Any:
    from onnx import helper, numpy_helper

    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value)
    if hasattr(value, "data_type"):  # a TensorProto
        return numpy_helper.to_array(value)
    return value


def _tensor_array(tensor, label: str, base_dir: Path | None) -> np.ndarray:
    from onnx import numpy_helper

    try:
        if base_dir is not None and tensor.data_location == 1:  # EXTERNAL
            from onnx.external_data_helper import load_external_data_for_tensor
            load_external_data_for_tensor(tensor, str(base_dir))
        array = numpy_helper.to_array(tensor)
    except Exception as exc:  # onnx raises bare errors on broken tensors; it also refuses
        # external data outside the model's folder (onnx >= 1.16, CVE-2024-27318)
        raise ModelError(f"{label}: initializer {quoted(tensor.name)} cannot be read "
                         f"({type(exc).__name__}: {quoted(str(exc), 160)})",
                         "the file is corrupt") from None
    array = np.array(array)  # own the memory; read-only afterwards
    array.flags.writeable = False
    return array


def parse_model_proto(data: bytes, label: str):
    """Return the onnx ModelProto of `data`, raising ModelError when it is not ONNX."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{label}: not an ONNX model ({type(exc).__name__}: {exc})",
                         "expected an ONNX protobuf (.onnx) or a TFLite flatbuffer") from None
    if model.ir_version <= 0 or not model.graph.node:
        raise ModelError(f"{label}: not an ONNX model (no IR version or no nodes)",
                         "expected an ONNX protobuf (.onnx) or a TFLite flatbuffer")
    return model


def _default_opset(model) -> int:
    versions = {o.domain: o.version for o in model.opset_import}
    return versions.get("", versions.get("ai.onnx", 0))


def upgrade_opset(model, label: str):
    """Return `model` at opset >= MIN_OPSET: opsets 7-10 are upgraded to UPGRADE_OPSET
    with onnx.version_converter, newer ones returned as they are."""
    version = _default_opset(model)
    if version >= MIN_OPSET:
        return model
    if version < OLDEST_OPSET:
        raise UnsupportedError(f"{label}: opset {version} is older than {OLDEST_OPSET}",
                               f"re-export the model with opset {UPGRADE_OPSET} or newer")
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, UPGRADE_OPSET)
    except Exception as exc:  # the converter raises bare RuntimeErrors
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UnsupportedError(
            f"{label}: opset {version} cannot be upgraded to {UPGRADE_OPSET} by "
            f"onnx.version_converter ({quoted(reason)})",
            f"re-export the model with opset {UPGRADE_OPSET} or newer") from None


def _symbolic_batch(value_info) -> bool:
    dims = value_info.type.tensor_type.shape.dim
    return bool(dims) and not (dims[0].HasField("dim_value") and dims[0].dim_value > 0)


def _declared_shape(value_info, label: str) -> list[int]:
    """Return the input's declared shape; a symbolic batch becomes 1."""
    shape = []
    for i, d in enumerate(value_info.type.tensor_type.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
        elif i == 0:
            shape.append(1)  # a symbolic batch: mnv2gen compiles batch 1
        else:
            raise UnsupportedError(
                f"{label}: input {quoted(value_info.name)} has a dynamic dimension {i} "
                f"({quoted(d.dim_param or '?')}); only the batch dimension may be symbolic",
                "fix the shape, e.g. `--input-shape 1,224,224,3` with `mnv2gen quantize`, or "
                "onnxruntime.tools.make_dynamic_shape_fixed")
    return shape


def _static_shape(value_info, label: str, override: tuple[int, ...] | None) -> tuple[int, ...]:
    """Return the input's static batch-1 shape: the declared one, or `override` (the CLI's
    --input-shape) where it agrees with every fixed dimension."""
    dims = value_info.type.tensor_type.shape.dim
    if override is None:
        shape = _declared_shape(value_info, label)
    else:
        if len(override) != len(dims):
            raise MnvError(f"{label}: --input-shape has {len(override)} dimensions, "
                           f"input {quoted(value_info.name)} has {len(dims)}")
        for i, (d, o) in enumerate(zip(dims, override, strict=True)):
            if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != o:
                raise MnvError(
                    f"{label}: --input-shape sets dimension {i} of {quoted(value_info.name)} "
                    f"to {o}, "
                    f"the model fixes it to {d.dim_value}")
        shape = list(override)
    if not shape:
        raise UnsupportedError(f"{label}: input {quoted(value_info.name)} has no shape",
                               "give it one with `--input-shape`")
    if shape[0] != 1:
        raise UnsupportedError(f"{label}: input {quoted(value_info.name)} has batch size "
                               f"{shape[0]}",
                               "mnv2gen compiles batch 1: re-export with batch 1 or give "
                               "`--input-shape 1,...` to `mnv2gen quantize`")
    check_shape(label, f"input {quoted(value_info.name)}", shape)
    return tuple(shape)


def read_onnx(data: bytes, label: str, input_shape: tuple[int, ...] | None = None,
              base_dir: Path | None = None) -> OnnxGraph:
    """Return the OnnxGraph of ONNX bytes (one float input, one output, static shapes).

    `base_dir` is where external tensor data lives (the model's folder); `input_shape`
    replaces the input's declared shape (needed when it has symbolic dimensions).
    """
    model = parse_model_proto(data, label)
    notes = []
    if _default_opset(model) < MIN_OPSET:
        notes.append(f"opset {_default_opset(model)} upgraded to {UPGRADE_OPSET} with "
                     "onnx.version_converter before import")
        model = upgrade_opset(model, label)
    opset = _default_opset(model)
    g = model.graph
    constants = {_text(t.name): _tensor_array(t, label, base_dir) for t in g.initializer}
    inputs = [v for v in g.input if _text(v.name) not in constants]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedError(f"{label}: has {len(inputs)} inputs and {len(g.output)} outputs",
                               "mnv2gen compiles single-input, single-output classifiers")
    x = inputs[0]
    if input_shape is None and _symbolic_batch(x):
        notes.append("the symbolic batch dimension of the input is fixed to 1")
    if x.type.tensor_type.elem_type != _FLOAT:
        raise UnsupportedError(f"{label}: input {quoted(x.name)} has element type "
                               f"{x.type.tensor_type.elem_type}, not float32",
                               "the ONNX front ends read float-input models (float or QDQ)")
    nodes = []
    for i, n in enumerate(g.node):
        op_type, domain = _text(n.op_type), _text(n.domain)
        if op_type in DYNAMIC_QUANT:
            raise UnsupportedError(
                f"{label}: node {i} ({op_type}) is dynamic quantisation (activation "
                "scales computed at run time), which int8 microcontroller code cannot do",
                "quantise statically: onnxruntime.quantization.quantize_static(...) with "
                "calibration data (QDQ or QOperator format), or give the float model to "
                "`mnv2gen quantize --calibrate IMAGES_DIR`")
        if domain not in ("", "ai.onnx") and not (domain == _MS_DOMAIN
                                                  and op_type in QOPERATORS):
            raise UnsupportedError(f"{label}: node {i} ({bare(op_type)}) is from the "
                                   f"custom domain {quoted(domain)}",
                                   "only standard ONNX operators and onnxruntime's QLinear "
                                   "operators are supported")
        attrs = {_text(a.name): _attribute_value(a) for a in n.attribute}
        node = Node(i, op_type, domain, tuple(map(_text, n.input)),
                    tuple(map(_text, n.output)), MappingProxyType(attrs))
        check_node(label, node)
        nodes.append(node)
    return OnnxGraph(label=label, name=Path(label).name, opset=opset, nodes=tuple(nodes),
                     constants=constants, input_name=_text(x.name),
                     input_shape=_static_shape(x, label, input_shape),
                     output_name=_text(g.output[0].name), sha256=hashlib.sha256(data).hexdigest(),
                     notes=tuple(notes))


def read_onnx_file(path: str | Path, input_shape: tuple[int, ...] | None = None) -> OnnxGraph:
    """Return the OnnxGraph of an ONNX file (see `read_onnx`)."""
    from mnv2gen.frontend.tflite import read_model_bytes

    data = read_model_bytes(path)
    return read_onnx(data, str(path), input_shape, Path(path).resolve().parent)


def is_quantized(data: bytes, label: str) -> bool:
    """Return True when the ONNX bytes hold QuantizeLinear, QOperator or dynamic
    quantisation nodes (the QDQ front end reads the first two, refuses the third)."""
    model = parse_model_proto(data, label)
    return any(t == "QuantizeLinear" or t in QOPERATORS or t in DYNAMIC_QUANT
               or t.startswith("QLinear") for t in (_text(n.op_type) for n in model.graph.node))
