"""TFLite writer: file layout, every IR op kind, padding lowering, round trip, TFLM runs."""

from __future__ import annotations

import numpy as np
import pytest
import tflite

from mnv2gen import zoo
from mnv2gen.errors import UnsupportedError
from mnv2gen.frontend.tflite import load_tflite
from mnv2gen.frontend.tflite_writer import LOWERINGS, write_tflite
from mnv2gen.ir import (
    Activation,
    AddAttrs,
    ConvAttrs,
    DType,
    FullyConnectedAttrs,
    Graph,
    MeanAttrs,
    NoAttrs,
    Op,
    OpKind,
    PadAttrs,
    Padding,
    PoolAttrs,
    QuantParams,
    SoftmaxAttrs,
    Tensor,
    TransposeAttrs,
)

_OPERATOR_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
# Versions the TFLite converter writes for int8 operators (tools/versioning/op_version.cc).
EXPECTED_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "ADD": 2, "AVERAGE_POOL_2D": 2,
                     "MEAN": 2, "FULLY_CONNECTED": 4, "RESHAPE": 1, "SOFTMAX": 2, "PAD": 2,
                     "TRANSPOSE": 2, "QUANTIZE": 1, "DEQUANTIZE": 2}


def q(scale: float, zero_point: int) -> QuantParams:
    return QuantParams((float(np.float32(scale)),), (zero_point,))


def weighted(name: str, shape, axis: int | None, input_scale: float, rng) -> list[Tensor]:
    """Return [int8 weights, int32 bias] quantised from random floats like the converter."""
    w = rng.normal(0.0, np.sqrt(2.0 / (np.prod(shape) / shape[axis or 0])), shape)
    reduce = tuple(i for i in range(len(shape)) if i != axis) if axis is not None else None
    w_scale = (np.abs(w).max(axis=reduce).reshape(-1) / 127).astype(np.float32)
    view = [1] * len(shape)
    if axis is not None:
        view[axis] = -1
    qw = np.round(w / w_scale.reshape(view)).astype(np.int8)
    b_scale = (np.float32(input_scale) * w_scale).astype(np.float32)
    n = shape[axis if axis is not None else 0]
    qb = np.round(rng.normal(0.0, 0.5, n) / np.broadcast_to(b_scale, (n,))).astype(np.int32)
    return [Tensor(f"{name}/weights", tuple(shape), DType.INT8,
                   QuantParams(tuple(map(float, w_scale)), (0,) * w_scale.size, axis or 0), qw),
            Tensor(f"{name}/bias", (n,), DType.INT32,
                   QuantParams(tuple(map(float, b_scale)), (0,) * b_scale.size), qb)]


PAD_ALL = Padding(1, 1, 1, 1)


def every_kind_graph(conv_padding: Padding = PAD_ALL) -> Graph:
    """Return a small graph using every IR operator kind (float in, float out)."""
    rng = np.random.default_rng(7)
    qx, relu6, relu = q(0.02, 3), q(6 / 255, -128), q(0.03, -128)
    add_q, mean_q, fc_q = q(0.05, -128), q(0.04, -128), q(0.1, 0)
    conv_out = (10 + conv_padding.top + conv_padding.bottom - 3) // 2 + 1
    t = [Tensor("x", (1, 8, 8, 3), DType.FLOAT32), Tensor("y", (1, 5), DType.FLOAT32),
         Tensor("q", (1, 8, 8, 3), DType.INT8, qx), Tensor("t", (1, 8, 8, 3), DType.INT8, qx),
         Tensor("p", (1, 10, 10, 3), DType.INT8, qx),
         Tensor("c", (1, conv_out, conv_out, 8), DType.INT8, relu6),
         Tensor("d", (1, conv_out, conv_out, 8), DType.INT8, relu),
         Tensor("a", (1, conv_out, conv_out, 8), DType.INT8, add_q),
         Tensor("ap", (1, conv_out - 1, conv_out - 1, 8), DType.INT8, add_q),
         Tensor("m", (1, 1, 1, 8), DType.INT8, mean_q), Tensor("r", (1, 8), DType.INT8, mean_q),
         Tensor("f", (1, 5), DType.INT8, fc_q),
         Tensor("s", (1, 5), DType.INT8, q(1 / 256, -128)),
         *weighted("conv", (8, 3, 3, 3), 0, qx.scale[0], rng),
         *weighted("dw", (1, 3, 3, 8), 3, relu6.scale[0], rng),
         *weighted("fc", (5, 8), None, mean_q.scale[0], rng)]
    ops = [
        Op(OpKind.QUANTIZE, "quantize", ("x",), ("q",), NoAttrs()),
        Op(OpKind.TRANSPOSE, "transpose", ("q",), ("t",), TransposeAttrs((0, 2, 1, 3))),
        Op(OpKind.PAD, "pad", ("t",), ("p",), PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0)))),
        Op(OpKind.CONV_2D, "conv", ("p", "conv/weights", "conv/bias"), ("c",),
           ConvAttrs(2, 2, conv_padding, Activation.RELU6)),
        Op(OpKind.DEPTHWISE_CONV_2D, "dw", ("c", "dw/weights", "dw/bias"), ("d",),
           ConvAttrs(1, 1, Padding(1, 1, 1, 1), Activation.RELU)),
        Op(OpKind.ADD, "add", ("c", "d"), ("a",), AddAttrs()),
        Op(OpKind.AVERAGE_POOL_2D, "pool", ("a",), ("ap",), PoolAttrs(2, 2, 1, 1, Padding())),
        Op(OpKind.MEAN, "mean", ("ap",), ("m",), MeanAttrs((1, 2), True)),
        Op(OpKind.RESHAPE, "reshape", ("m",), ("r",)),
        Op(OpKind.FULLY_CONNECTED, "fc", ("r", "fc/weights", "fc/bias"), ("f",),
           FullyConnectedAttrs()),
        Op(OpKind.SOFTMAX, "softmax", ("f",), ("s",), SoftmaxAttrs(1.0)),
        Op(OpKind.DEQUANTIZE, "dequantize", ("s",), ("y",), NoAttrs()),
    ]
    ops = [Op(o.kind, o.name, o.inputs, o.outputs, o.attrs, i) for i, o in enumerate(ops)]
    graph = Graph("every_kind", {x.name: x for x in t}, tuple(ops), ("x",), ("y",))
    graph.verify()
    return graph


def _model(data: bytes):
    return tflite.Model.GetRootAsModel(data, 0)


def _ops(data: bytes) -> list[tuple[str, int, object]]:
    """Return (operator name, version, flatbuffer Operator) per operator."""
    m = _model(data)
    sg = m.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        out.append((_OPERATOR_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())],
                    code.Version(), op))
    return out


def _options(op, cls):
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _const(data: bytes, op, input_index: int) -> np.ndarray:
    m = _model(data)
    t = m.Subgraphs(0).Tensors(op.Inputs(input_index))
    return m.Buffers(t.Buffer()).DataAsNumpy().view(np.int32).reshape(t.ShapeAsNumpy())


def test_file_layout_and_opcodes():
    assert set(LOWERINGS) == set(OpKind)
    data = write_tflite(every_kind_graph())
    m = _model(data)
    assert data[4:8] == b"TFL3" and m.Version() == 3 and m.SubgraphsLength() == 1
    assert m.Buffers(0).DataLength() == 0
    for i in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(i)
        assert code.DeprecatedBuiltinCode() == min(code.BuiltinCode(), 127)
        assert code.Version() == EXPECTED_VERSIONS[_OPERATOR_NAMES[code.BuiltinCode()]]
    for i in range(1, m.BuffersLength()):
        buf = m.Buffers(i)
        assert buf.DataLength() > 0
        assert buf._tab.Vector(buf._tab.Offset(4)) % 16 == 0  # data aligned like the converter's
    sg = m.Subgraphs(0)
    assert [sg.Tensors(i).Name().decode() for i in sg.InputsAsNumpy()] == ["x"]
    assert [sg.Tensors(i).Name().decode() for i in sg.OutputsAsNumpy()] == ["y"]


def test_every_op_kind_is_lowered_with_its_operands():
    data = write_tflite(every_kind_graph())
    ops = _ops(data)
    assert [name for name, _, _ in ops] == [
        "QUANTIZE", "TRANSPOSE", "PAD", "PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD",
        "AVERAGE_POOL_2D", "MEAN", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"]
    by_name = {name: op for name, _, op in ops}
    assert _const(data, by_name["TRANSPOSE"], 1).tolist() == [0, 2, 1, 3]
    assert _const(data, ops[3][2], 1).tolist() == [[0, 0], [1, 1], [1, 1], [0, 0]]
    assert _const(data, by_name["MEAN"], 1).tolist() == [1, 2]
    assert _options(by_name["MEAN"], tflite.ReducerOptions).KeepDims()
    assert _const(data, by_name["RESHAPE"], 1).tolist() == [1, 8]
    assert _options(by_name["RESHAPE"], tflite.ReshapeOptions).NewShapeAsNumpy().tolist() == [1, 8]
    assert _options(by_name["SOFTMAX"], tflite.SoftmaxOptions).Beta() == 1.0
    conv = _options(by_name["CONV_2D"], tflite.Conv2DOptions)
    assert (conv.Padding(), conv.StrideH(), conv.FusedActivationFunction()) == (
        tflite.Padding.VALID, 2, tflite.ActivationFunctionType.RELU6)
    dw = _options(by_name["DEPTHWISE_CONV_2D"], tflite.DepthwiseConv2DOptions)
    assert (dw.Padding(), dw.DepthMultiplier(), dw.FusedActivationFunction()) == (
        tflite.Padding.SAME, 1, tflite.ActivationFunctionType.RELU)
    pool = _options(by_name["AVERAGE_POOL_2D"], tflite.Pool2DOptions)
    assert (pool.Padding(), pool.FilterWidth(), pool.StrideW()) == (tflite.Padding.VALID, 2, 1)


@pytest.mark.parametrize("padding, tflite_padding, pads", [
    (Padding(0, 1, 0, 1), tflite.Padding.SAME, None),  # equals SAME for 10 -> 5, stride 2
    (Padding(0, 0, 0, 0), tflite.Padding.VALID, None),
    (Padding(1, 1, 1, 1), tflite.Padding.VALID, [[0, 0], [1, 1], [1, 1], [0, 0]]),
    (Padding(2, 0, 1, 0), tflite.Padding.VALID, [[0, 0], [2, 0], [1, 0], [0, 0]]),
])
def test_conv_padding_is_same_valid_or_an_explicit_pad(padding, tflite_padding, pads):
    data = write_tflite(every_kind_graph(padding))
    ops = _ops(data)
    conv_at = next(i for i, (name, _, _) in enumerate(ops) if name == "CONV_2D")
    assert _options(ops[conv_at][2], tflite.Conv2DOptions).Padding() == tflite_padding
    before = ops[conv_at - 1]
    if pads is None:
        assert ops[conv_at - 1][0] == "PAD" and ops[conv_at - 2][0] == "TRANSPOSE"  # IR's own PAD
    else:
        assert before[0] == "PAD" and _const(data, before[2], 1).tolist() == pads
    # read back: the explicit padding lives in a PAD op, the conv itself pads nothing
    loaded = load_tflite(data)
    conv = next(op for op in loaded.ops if op.kind is OpKind.CONV_2D)
    expected = padding if pads is None else Padding()
    assert conv.attrs.padding == expected


def test_average_pool_padding_tflite_cannot_express_is_rejected():
    g = every_kind_graph()
    ops = list(g.ops)
    i = next(k for k, op in enumerate(ops) if op.kind is OpKind.AVERAGE_POOL_2D)
    ops[i] = Op(OpKind.AVERAGE_POOL_2D, "pool", ("a",), ("ap",),
                PoolAttrs(2, 2, 1, 1, Padding(1, 0, 1, 0)), i)
    ap = g.tensor("ap")
    tensors = dict(g.tensors) | {"ap": Tensor("ap", (1, 5, 5, 8), ap.dtype, ap.quant)}
    with pytest.raises(UnsupportedError, match="neither SAME"):
        write_tflite(g.replace(ops=tuple(ops), tensors=tensors))


def test_every_op_kind_runs_in_tflm_like_the_reference():
    """TFLite Micro on the written file == the NumPy reference on the IR, bit for bit."""
    pytest.importorskip("tflite_micro")
    from mnv2gen.reference import run
    from mnv2gen.tflm import run_tflm

    rng = np.random.default_rng(0)
    for padding in (Padding(1, 1, 1, 1), Padding(0, 1, 0, 1), Padding(2, 0, 1, 0)):
        graph = every_kind_graph(padding)
        data = write_tflite(graph)
        for _ in range(4):
            x = rng.uniform(-2.5, 2.5, (1, 8, 8, 3)).astype(np.float32)
            (ours,), (theirs,) = run(graph, [x]), run_tflm(data, [x])
            assert np.array_equal(ours, theirs)


def _assert_same_graph(a: Graph, b: Graph) -> None:
    assert (a.inputs, a.outputs) == (b.inputs, b.outputs)
    assert set(a.tensors) == set(b.tensors)
    for name, t in a.tensors.items():
        u = b.tensor(name)
        assert (t.shape, t.dtype, t.quant) == (u.shape, u.dtype, u.quant), name
        assert (t.data is None) == (u.data is None), name
        if t.data is not None:
            assert t.data.dtype == u.data.dtype and np.array_equal(t.data, u.data), name
    assert len(a.ops) == len(b.ops)
    for x, y in zip(a.ops, b.ops, strict=True):
        assert (x.kind, x.inputs, x.outputs, x.attrs, x.source_index) == (
            y.kind, y.inputs, y.outputs, y.attrs, y.source_index), x.name


@pytest.mark.parametrize("arch, alpha, resolution, classes, channels", [
    ("mobilenet-v2", 0.35, 96, 10, 3), ("mobilenet-v1", 0.25, 96, 2, 1)])
def test_zoo_round_trip(arch, alpha, resolution, classes, channels):
    """synthesize -> write -> load gives back the same tensors, ops and quantisation."""
    graph = zoo.synthesize(arch, alpha, resolution, classes, 0, channels)
    _assert_same_graph(graph, load_tflite(write_tflite(graph)))


def test_round_trip_of_every_kind_without_added_ops():
    graph = every_kind_graph(Padding(0, 1, 0, 1))
    _assert_same_graph(graph, load_tflite(write_tflite(graph)))


def test_same_graph_same_bytes():
    assert write_tflite(every_kind_graph()) == write_tflite(every_kind_graph())


def test_added_constant_names_do_not_collide():
    g = every_kind_graph()
    clash = Tensor("mean/axes", (1, 8), DType.INT8, q(0.04, -128))
    ops = [op if op.kind is not OpKind.RESHAPE else
           Op(OpKind.RESHAPE, "reshape", ("m",), ("mean/axes",), NoAttrs(), op.source_index)
           for op in g.ops]
    ops = [op if op.kind is not OpKind.FULLY_CONNECTED else
           Op(op.kind, op.name, ("mean/axes", *op.inputs[1:]), op.outputs, op.attrs,
              op.source_index) for op in ops]
    tensors = {n: t for n, t in g.tensors.items() if n != "r"} | {"mean/axes": clash}
    data = write_tflite(g.replace(tensors=tensors, ops=tuple(ops)))
    sg = _model(data).Subgraphs(0)
    names = [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength())]
    assert len(names) == len(set(names)) and "mean/axes_1" in names
