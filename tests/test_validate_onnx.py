"""The front door for ONNX nodes (mnv2gen.frontend.validate_onnx): QOperator operands,
scales, zero points and biases, quantisation-node inputs and attribute types are refused by
name, in one line, before the rewrite or a translator computes with them."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import onnx_builders as ob
import pytest
from onnx import helper, numpy_helper

from mnv2gen.errors import MnvError, ModelError
from mnv2gen.frontend.onnx_graph import Node
from mnv2gen.frontend.onnx_qdq import load_qdq
from mnv2gen.frontend.onnx_qoperator import RULES
from mnv2gen.frontend.validate_onnx import check_qoperator


def _set_init(m, name: str, value) -> None:
    for init in m.graph.initializer:
        if init.name == name:
            init.CopyFrom(numpy_helper.from_array(np.asarray(value), name))
            return
    m.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))


def _conv(m):
    return next(n for n in m.graph.node if n.op_type == "QLinearConv")


def _refusal(m) -> str:
    with pytest.raises(MnvError) as info:
        load_qdq(m.SerializeToString(), "m.onnx")
    message = str(info.value)
    assert "\n" not in message and message.startswith("m.onnx: node ")
    assert info.value.hint
    return message


def test_the_unmodified_qoperator_model_loads():
    graph = load_qdq(ob.qoperator().SerializeToString(), "m.onnx")
    assert [op.kind.value for op in graph.ops].count("CONV_2D") == 1


@pytest.mark.parametrize("value", [np.float32("nan"), np.float32("inf"), np.float32(0),
                                   np.float32(-0.01), np.float32(1e-40)])
def test_bad_weight_scales_are_named(value):
    m = ob.qoperator()
    _set_init(m, "ws", value)
    message = _refusal(m)
    assert "node 1 (QLinearConv)" in message and "input 4 has scale" in message


def test_a_missing_scale_is_named():
    m = ob.qoperator()
    _conv(m).input[4] = ""
    assert "input 4 (a scale, '') is missing" in _refusal(m)


def test_a_non_constant_scale_is_named():
    m = ob.qoperator()
    _conv(m).input[6] = "xq"
    assert "input 6 (a scale, 'xq') is not a constant initializer" in _refusal(m)


def test_a_16_bit_zero_point_is_named():
    m = ob.qoperator()
    _set_init(m, "wz2", np.int16(0))
    _conv(m).input[5] = "wz2"
    assert "input 5 (a zero point) is int16" in _refusal(m)


def test_more_zero_points_than_scales_are_named():
    m = ob.qoperator()
    _set_init(m, "wz2", np.zeros(3, np.int8))
    _conv(m).input[5] = "wz2"
    assert "has 1 scales and 3 zero points (input 5)" in _refusal(m)


def test_a_per_channel_input_scale_is_refused():
    m = ob.qoperator()
    _set_init(m, "s4", np.full(4, 0.1, np.float32))
    _conv(m).input[1] = "s4"
    assert "quantises its input per channel (4 scales)" in _refusal(m)


def test_a_float_bias_is_named():
    m = ob.qoperator()
    _set_init(m, "b", np.zeros(4, np.float32))
    _conv(m).input.append("b")
    assert "has a float32 bias of shape (4,)" in _refusal(m)


def test_a_node_without_output_is_named():
    m = ob.qoperator()
    del _conv(m).output[:]
    assert "node 1 (QLinearConv) has no output" in _refusal(m)


def test_a_dequantize_without_scale_is_named():
    m = ob.qoperator()
    del m.graph.node[2].input[1:]
    assert "node 2 (DequantizeLinear) has 1 inputs; it needs at least 2" in _refusal(m)


@pytest.mark.parametrize("name, value", [("strides", "x\n*/"), ("group", 1.5),
                                         ("pads", 7), ("auto_pad", 3)])
def test_attributes_of_another_type_are_named(name, value):
    m = ob.qoperator()
    _conv(m).attribute.append(helper.make_attribute(name, value))
    message = _refusal(m)
    assert f"attribute '{name}' is" in message and "\\n" not in message.replace("\\\\", "")


def _node(op_type: str, inputs, outputs=("y",)) -> Node:
    return Node(3, op_type, "", tuple(inputs), tuple(outputs), MappingProxyType({}))


@pytest.mark.parametrize("op_type", sorted(RULES))
def test_every_qoperator_row_is_checked(op_type):
    """Every QOperator mnv2gen rewrites passes with complete operands and is refused, by
    node and input, when its output scale (or first operand scale) is missing."""
    rule = RULES[op_type]
    consts = {"s": np.float32(0.1), "z": np.int8(0), "w": np.ones((4, 4, 1, 1), np.int8),
              "ws": np.full(4, 0.01, np.float32), "wz": np.zeros(4, np.int8),
              "b": np.zeros(4, np.int32)}
    operands = rule.operands or ((2, 3, 4), (5, 6, 7))
    count = 1 + max(max(max(t) for t in operands), *(rule.output or (0,)), rule.bias or 0)
    inputs = [""] * count
    for k, (d, s, z) in enumerate(operands):
        inputs[d], inputs[s], inputs[z] = ("w", "ws", "wz") if k == 1 and rule.bias else \
            ("x", "s", "z")
    if rule.output:
        inputs[rule.output[0]], inputs[rule.output[1]] = "s", "z"
    if rule.bias is not None:
        inputs[rule.bias] = "b"
    check_qoperator("m.onnx", _node(op_type, inputs), consts, operands, rule.output, rule.bias)
    broken = list(inputs)
    broken[rule.output[0] if rule.output else operands[0][1]] = ""
    with pytest.raises(ModelError, match=rf"m.onnx: node 3 \({op_type}\) input \d+ \(a scale"):
        check_qoperator("m.onnx", _node(op_type, broken), consts, operands, rule.output,
                        rule.bias)
