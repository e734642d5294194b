"""Tiny ONNX models built with onnx.helper for the ONNX front-end tests."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def model(nodes, x_dims, inits: dict, y_dims, opset: int = 13, x_type: int = F):
    """Return a ModelProto with input 'x', output 'y' and the given initializers."""
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", x_type, x_dims)],
        [helper.make_tensor_value_info("y", F, y_dims)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _w(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def nchw_residual(seed: int = 0, group: int | None = None):
    """PyTorch-style NCHW: Conv s2 + BatchNorm + Relu, depthwise + Clip(0, 6), 1x1 Conv,
    residual Add, GlobalAveragePool, Flatten, Gemm(transB=1), Softmax. x: 1x3x16x16."""
    rng = np.random.default_rng(seed)
    c = 8
    inits = {
        "w1": _w(rng, c, 3, 3, 3), "b1": _w(rng, c, scale=0.1),
        "bn_s": rng.uniform(0.5, 1.5, c).astype(np.float32), "bn_b": _w(rng, c, scale=0.2),
        "bn_m": _w(rng, c, scale=0.2), "bn_v": rng.uniform(0.5, 2.0, c).astype(np.float32),
        "w2": _w(rng, c, 1, 3, 3, scale=0.5), "lo": np.float32(0), "hi": np.float32(6),
        "w3": _w(rng, c, c, 1, 1), "b3": _w(rng, c, scale=0.1),
        "w4": _w(rng, 5, c, scale=1.0), "b4": _w(rng, 5, scale=0.2),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"],
                         epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["dw"], group=group or c, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["dw", "lo", "hi"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["proj"]),
        helper.make_node("Add", ["proj", "r1"], ["res"]),
        helper.make_node("GlobalAveragePool", ["res"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w4", "b4"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    return model(nodes, [1, 3, 16, 16], inits, [1, 5])


def nhwc_shape_arithmetic(seed: int = 0):
    """tf2onnx-style NHWC: Transpose in, Pad + Conv s2, Mul/Add constants (BN leftovers),
    Clip(0, 6), depthwise x2 + Clip(min 0), ReduceMean, Shape/Gather/Unsqueeze/Concat/Cast
    -> Reshape, MatMul + Add bias. x: 1x12x12x4, y: 1x3 logits."""
    rng = np.random.default_rng(seed)
    inits = {
        "perm_pad": np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64),
        "w1": _w(rng, 6, 4, 3, 3), "mul": rng.uniform(0.5, 1.5, (1, 6, 1, 1)).astype(np.float32),
        "add": _w(rng, 1, 6, 1, 1, scale=0.2), "lo": np.float32(0), "hi": np.float32(6),
        "w2": _w(rng, 12, 1, 3, 3, scale=0.5), "zero": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64), "wm": _w(rng, 12, 3, scale=1.0),
        "bm": _w(rng, 3, scale=0.2),
    }
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Pad", ["t", "perm_pad"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "w1"], ["c1"], strides=[2, 2]),
        helper.make_node("Mul", ["c1", "mul"], ["m"]),
        helper.make_node("Add", ["m", "add"], ["a"]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["dw"], group=6, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["dw", "lo"], ["r2"]),
        helper.make_node("ReduceMean", ["r2"], ["rm"], axes=[2, 3], keepdims=1),
        helper.make_node("Shape", ["rm"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Concat", ["batch", "minus1"], ["target"], axis=0),
        helper.make_node("Cast", ["target"], ["target64"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["rm", "target64"], ["flat"]),
        helper.make_node("MatMul", ["flat", "wm"], ["mm"]),
        helper.make_node("Add", ["mm", "bm"], ["y"]),
    ]
    return model(nodes, [1, 12, 12, 4], inits, [1, 3])


def single_op(op_type: str, **attrs):
    """Return x(1x4x8x8) -> Conv 1x1 -> `op_type` -> y."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node(op_type, ["c"], ["y"], **attrs)]
    return model(nodes, [1, 4, 8, 8], {"w": _w(rng, 4, 4, 1, 1)}, [1, 4, 8, 8])


def qoperator():
    """Return a model with a QLinearConv node (onnxruntime's QOperator format)."""
    q = {"s": np.float32(0.1), "z": np.int8(0), "w": np.ones((4, 4, 1, 1), np.int8),
         "ws": np.float32(0.01), "wz": np.int8(0)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("QLinearConv", ["xq", "s", "z", "w", "ws", "wz", "s", "z"],
                              ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    return model(nodes, [1, 4, 8, 8], q, [1, 4, 8, 8])


def uint8_qdq():
    """Return a QDQ model whose activations are uint8 (onnxruntime's QUInt8 default)."""
    rng = np.random.default_rng(0)
    inits = {"s": np.float32(0.05), "z": np.uint8(128),
             "wq": rng.integers(-127, 128, (4, 4, 1, 1)).astype(np.int8),
             "ws": np.full(4, 0.01, np.float32), "wz": np.zeros(4, np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             helper.make_node("Conv", ["xd", "w"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"])]
    return model(nodes, [1, 4, 8, 8], inits, [1, 4, 8, 8])


def dynamic_quant():
    """Return onnxruntime's dynamic quantisation of a 1x1 Conv: DynamicQuantizeLinear of the
    activation at run time, ConvInteger, and a float rescale."""
    rng = np.random.default_rng(0)
    inits = {"w": rng.integers(-127, 128, (4, 4, 1, 1)).astype(np.int8), "wz": np.int8(0),
             "ws": np.float32(0.01)}
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=F),
             helper.make_node("Mul", ["xs", "ws"], ["s"]),
             helper.make_node("Mul", ["accf", "s"], ["y"])]
    return model(nodes, [1, 4, 8, 8], inits, [1, 4, 8, 8])


def qdq_chain(act_type=np.int8, weights=None, weight_zero=0, opset: int = 13,
              final_dequantize: bool = True):
    """Return x -> Q/DQ -> Conv 1x1 (4 -> 4, per-tensor weights) -> Q/DQ -> y with
    activations of `act_type` and the given integer weights and weight zero point (their
    type is the weights' dtype)."""
    rng = np.random.default_rng(0)
    zero = {np.int8: 0, np.uint8: 128, np.int16: 0}[act_type]
    w = rng.integers(-100, 101, (4, 4, 1, 1)).astype(np.int8) if weights is None else weights
    inits = {"s": np.float32(0.05), "z": np.asarray(zero, act_type), "wq": w,
             "ws": np.float32(0.01), "wz": np.asarray(weight_zero, w.dtype),
             "s2": np.float32(0.08), "z2": np.asarray(zero + 3, act_type)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"]),
             helper.make_node("Conv", ["xd", "w"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "s2", "z2"], ["cq"] if final_dequantize
                              else ["y"])]
    if final_dequantize:
        nodes.append(helper.make_node("DequantizeLinear", ["cq", "s2", "z2"], ["y"]))
    m = model(nodes, [1, 4, 8, 8], inits, [1, 4, 8, 8], opset=opset)
    if not final_dequantize:
        m.graph.output[0].type.tensor_type.elem_type = helper.np_dtype_to_tensor_dtype(
            np.dtype(act_type))
    return m


def qlinear_single(op_type: str):
    """Return Quantize -> QLinearConv 1x1 -> a com.microsoft `op_type`(X, xs, xz, ys, yz)
    -> Dequantize: a QOperator node without a rule in mnv2gen (e.g. QLinearSigmoid)."""
    q = {"s": np.float32(0.1), "z": np.int8(0), "w": np.ones((4, 4, 1, 1), np.int8),
         "ws": np.float32(0.01), "wz": np.int8(0)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("QLinearConv", ["xq", "s", "z", "w", "ws", "wz", "s", "z"],
                              ["cq"]),
             helper.make_node(op_type, ["cq", "s", "z", "s", "z"], ["yq"],
                              domain="com.microsoft"),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    m = model(nodes, [1, 4, 8, 8], q, [1, 4, 8, 8])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return m


def nchw_pooled(seed: int = 0):
    """NCHW: Conv s1 + Relu, AveragePool 2x2 s2, depthwise + Clip(0, 6), 1x1 Conv,
    GlobalAveragePool, Flatten, Gemm. x: 1x3x16x16, y: 1x6 logits."""
    rng = np.random.default_rng(seed)
    inits = {"w1": _w(rng, 8, 3, 3, 3), "b1": _w(rng, 8, scale=0.1),
             "w2": _w(rng, 8, 1, 3, 3, scale=0.5), "lo": np.float32(0), "hi": np.float32(6),
             "w3": _w(rng, 12, 8, 1, 1), "w4": _w(rng, 6, 12, scale=1.0),
             "b4": _w(rng, 6, scale=0.2)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("AveragePool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["dw"], group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["dw", "lo", "hi"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3"], ["c3"]),
        helper.make_node("GlobalAveragePool", ["c3"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w4", "b4"], ["y"], transB=1),
    ]
    return model(nodes, [1, 3, 16, 16], inits, [1, 6])


def opset9_plumbing(seed: int = 0):
    """Opset 9 (PyTorch 1.x style): Conv + BatchNormalization + Clip(min, max attributes),
    GlobalAveragePool, Shape -> Gather -> Unsqueeze(axes attribute) -> Concat -> Reshape,
    Gemm. x: 1x3x16x16 with a symbolic batch, y: 1x5."""
    rng = np.random.default_rng(seed)
    c = 8
    inits = {"w1": _w(rng, c, 3, 3, 3), "bn_s": rng.uniform(0.5, 1.5, c).astype(np.float32),
             "bn_b": _w(rng, c, scale=0.2), "bn_m": _w(rng, c, scale=0.2),
             "bn_v": rng.uniform(0.5, 2.0, c).astype(np.float32), "zero": np.array(0, np.int64),
             "minus1": np.array([-1], np.int64), "w2": _w(rng, 5, c, scale=1.0),
             "b2": _w(rng, 5, scale=0.2)}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"]),
        helper.make_node("Clip", ["bn"], ["r1"], min=0.0, max=6.0),
        helper.make_node("GlobalAveragePool", ["r1"], ["gap"]),
        helper.make_node("Shape", ["gap"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch"], ["batch1"], axes=[0]),
        helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["gap", "target"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w2", "b2"], ["y"], transB=1),
    ]
    m = model(nodes, ["batch", 3, 16, 16], inits, ["batch", 5], opset=9)
    m.ir_version = 4
    return m


def qlinear_concat():
    """Return Quantize -> QLinearConv 1x1 twice -> com.microsoft QLinearConcat of both
    along channels -> Dequantize (a concatenation of activations)."""
    q = {"s": np.float32(0.1), "z": np.int8(0), "w": np.ones((4, 4, 1, 1), np.int8),
         "ws": np.float32(0.01), "wz": np.int8(0)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("QLinearConv", ["xq", "s", "z", "w", "ws", "wz", "s", "z"],
                              ["aq"]),
             helper.make_node("QLinearConv", ["xq", "s", "z", "w", "ws", "wz", "s", "z"],
                              ["bq"]),
             helper.make_node("QLinearConcat", ["s", "z", "aq", "s", "z", "bq", "s", "z"],
                              ["yq"], domain="com.microsoft", axis=1),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    m = model(nodes, [1, 4, 8, 8], q, [1, 8, 8, 8])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return m


def qlinear_channels_last_pool(act_type=np.uint8):
    """Return Quantize -> QLinearConv 3x3 -> integer Transpose to NHWC ->
    QLinearGlobalAveragePool(channels_last=1) -> Dequantize. x: 1x4x8x8, y: 1x1x1x6."""
    rng = np.random.default_rng(2)
    zero = 128 if act_type == np.uint8 else 0
    q = {"s": np.float32(0.05), "z": np.asarray(zero, act_type),
         "w": rng.integers(-127, 128, (6, 4, 3, 3)).astype(np.int8),
         "ws": rng.uniform(0.002, 0.006, 6).astype(np.float32), "wz": np.zeros(6, np.int8),
         "b": rng.integers(-500, 500, 6).astype(np.int32), "s2": np.float32(0.04),
         "z2": np.asarray(zero + 5, act_type), "s3": np.float32(0.01),
         "z3": np.asarray(zero - 3, act_type)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("QLinearConv", ["xq", "s", "z", "w", "ws", "wz", "s2", "z2", "b"],
                              ["cq"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["cq"], ["tq"], perm=[0, 2, 3, 1]),
             helper.make_node("QLinearGlobalAveragePool", ["tq", "s2", "z2", "s3", "z3"], ["pq"],
                              domain="com.microsoft", channels_last=1),
             helper.make_node("DequantizeLinear", ["pq", "s3", "z3"], ["y"])]
    m = model(nodes, [1, 4, 8, 8], q, [1, 1, 1, 6])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return m


def nchw_matmul_head(seed: int = 0):
    """NCHW: Conv + Relu, GlobalAveragePool, Flatten, MatMul, Add bias (the head older
    onnxruntime versions quantise as QLinearMatMul + QLinearAdd). x: 1x3x16x16, y: 1x5."""
    rng = np.random.default_rng(seed)
    inits = {"w1": _w(rng, 8, 3, 3, 3), "wm": _w(rng, 8, 5, scale=1.0),
             "bm": _w(rng, 5, scale=0.2)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("GlobalAveragePool", ["r1"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("MatMul", ["flat", "wm"], ["mm"]),
             helper.make_node("Add", ["mm", "bm"], ["y"])]
    return model(nodes, [1, 3, 16, 16], inits, [1, 5])
