"""The NumPy reference equals the TFLite Micro interpreter, byte for byte, tensor by tensor.

Real models come from ../shared/models; small synthetic models (written with the
schema object API that ships with tflite-micro) cover kernel configurations the real
models do not use: depth multipliers, dilation, clipped pooling windows, MEAN with
keep_dims or other axes, per-channel FULLY_CONNECTED, softmax beta, QUANTIZE edges.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import model_params

from mnv2gen import reference
from mnv2gen.errors import MnvError
from mnv2gen.frontend.tflite import load_tflite
from mnv2gen.ir import DType, Graph
from mnv2gen.tflm import (
    compare_with_tflm,
    run_tflm,
    run_tflm_op_outputs,
    tflm_arena_bytes,
    tflm_available,
)

try:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
except ImportError:
    schema = None

needs_tflm = pytest.mark.skipif(not tflm_available(),
                                reason="tflite-micro is not installed (pip install mnv2gen[tflm])")

SEEDS = (0, 1, 2)
# MANIFEST.md: TFLM's recorded arena totals
ARENA_BYTES = {"tflm_person_detect_mbv1_0.25_96_int8": 85264,
               "aquapapaya_keras_mobilenet_v2_1.0_224_ptq_int8": 2582768}


def random_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    """Return seeded random arrays for the graph inputs (full integer range; floats in +-2)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for name in graph.inputs:
        t = graph.tensor(name)
        if t.dtype is DType.FLOAT32:
            arrays.append(rng.uniform(-2.0, 2.0, t.shape).astype(np.float32))
        else:
            info = np.iinfo(t.dtype.np)
            arrays.append(rng.integers(info.min, info.max + 1, t.shape).astype(t.dtype.np))
    return arrays


def differing_bytes(graph: Graph, model: bytes, inputs: list[np.ndarray]) -> dict[str, int]:
    """Return {op name: differing bytes} over every operator output (only mismatches)."""
    ours = reference.run_all(graph, inputs)
    theirs = run_tflm_op_outputs(model, inputs)
    bad = {}
    for op in graph.ops:
        a = ours[op.outputs[0]]
        b = np.ascontiguousarray(theirs[op.source_index]).reshape(a.shape).astype(a.dtype)
        count = int(np.count_nonzero(a.view(np.uint8) != b.view(np.uint8)))
        if count:
            bad[op.name] = count
    return bad


@needs_tflm
@pytest.mark.parametrize("path", model_params())
def test_shared_model_matches_tflm(path: Path):
    model = path.read_bytes()
    graph = load_tflite(model, label=path.name)
    for seed in SEEDS:
        inputs = random_inputs(graph, seed)
        assert differing_bytes(graph, model, inputs) == {}, f"seed {seed}"
        outputs = zip(reference.run(graph, inputs), run_tflm(model, inputs), strict=True)
        for ours, theirs in outputs:
            assert ours.tobytes() == np.ascontiguousarray(theirs, ours.dtype).tobytes()


@needs_tflm
@pytest.mark.parametrize("vector, expected", [("person", [-113, 113]), ("no_person", [57, -57])])
def test_person_detect_test_vectors(shared_models, vector, expected):
    path = shared_models / "tflite" / "tflm_person_detect_mbv1_0.25_96_int8.tflite"
    image = np.load(shared_models / "testvectors" / f"tflm_{vector}_1x96x96x1_int8.npy")
    graph = load_tflite(path)
    assert reference.run(graph, [image])[0].ravel().tolist() == expected
    assert run_tflm(path.read_bytes(), [image])[0].ravel().tolist() == expected


@needs_tflm
@pytest.mark.parametrize("stem, expected", sorted(ARENA_BYTES.items()))
def test_tflm_arena_bytes_reproduce_the_manifest(shared_models, stem, expected):
    path = shared_models / "tflite" / f"{stem}.tflite"
    assert tflm_arena_bytes(path.read_bytes()) == expected


def test_wrapper_without_the_package_fails_cleanly():
    code = textwrap.dedent("""
        import sys
        sys.modules["tflite_micro"] = None  # as if the package were not installed
        from mnv2gen.errors import MnvError
        from mnv2gen.tflm import run_tflm, tflm_available
        assert not tflm_available()
        try:
            run_tflm(b"", [])
        except MnvError as exc:
            print(exc, "|", exc.hint)
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], check=True)
    assert "tflite-micro package is not installed | pip install" in result.stdout


@needs_tflm
def test_compare_with_tflm_counts_differing_bytes(shared_model):
    model = shared_model("tflm_person_detect").read_bytes()
    graph = load_tflite(model)
    inputs = random_inputs(graph, 0)
    outputs = reference.run(graph, inputs)
    verdict = compare_with_tflm(model, inputs, outputs)
    assert verdict.bit_exact and verdict.total_bytes == 2 and "bit-exact" in verdict.describe()
    outputs[0][0, 1] ^= 1
    verdict = compare_with_tflm(model, inputs, outputs)
    assert not verdict.bit_exact and verdict.mismatched_bytes == 1


@needs_tflm
def test_wrapper_reports_tflm_errors(shared_model):
    with pytest.raises(MnvError, match="expected type INT8"):
        run_tflm(shared_model("tflm_person_detect").read_bytes(),
                 [np.zeros((1, 96, 96, 1), np.float32)])


# ---- synthetic single-purpose models -------------------------------------------------

_TYPES = {"int8": (0, 9, np.int8), "uint8": (0, 3, np.uint8), "int32": (0, 2, np.int32),
          "float32": (0, 0, np.float32)}
RELU, RELU_N1_TO_1, RELU6 = 1, 2, 3
SAME, VALID = 0, 1


class ModelBuilder:
    """Write a one-subgraph .tflite with the schema object API (test data only)."""

    def __init__(self, rng):
        self.rng = rng
        self.tensors, self.buffers, self.ops, self.codes = [], [schema.BufferT()], [], []

    def tensor(self, shape, dtype="int8", scale=None, zero_point=0, axis=0, data=None) -> int:
        t = schema.TensorT()
        t.shape, t.type, t.name = list(shape), _TYPES[dtype][1], f"t{len(self.tensors)}"
        t.buffer = 0
        if data is not None:
            buf = schema.BufferT()
            buf.data = np.frombuffer(np.asarray(data, _TYPES[dtype][2]).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            scales = [float(s) for s in np.atleast_1d(scale)]
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale, t.quantization.quantizedDimension = scales, axis
            t.quantization.zeroPoint = [zero_point] * len(scales)
        self.tensors.append(t)
        return len(self.tensors) - 1

    def act(self, shape, scale, zero_point) -> int:
        return self.tensor(shape, "int8", scale, zero_point)

    def weighted(self, w_shape, in_scale, axis, per_channel=True) -> tuple[int, int]:
        """Return (weights, bias) tensor indices with random int8 weights and int32 bias."""
        channels = w_shape[axis]
        scales = self.rng.uniform(0.002, 0.02, channels if per_channel else 1).astype(np.float32)
        w = self.rng.integers(-127, 128, w_shape)
        bias = self.rng.integers(-3000, 3000, channels)
        bias_scales = (np.float32(in_scale) * scales).astype(np.float32)
        return (self.tensor(w_shape, "int8", scales, 0, axis, w),
                self.tensor([channels], "int32", bias_scales, 0, 0, bias))

    def op(self, name: str, options, inputs, output: int) -> int:
        code = getattr(schema.BuiltinOperator, name)
        if code not in self.codes:
            self.codes.append(code)
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), list(inputs), [output]
        if options is not None:
            o.builtinOptions = options
            o.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
        self.ops.append(o)
        return output

    def finish(self, outputs) -> bytes:
        import flatbuffers

        produced = {o.outputs[0] for o in self.ops}
        consumed = [i for o in self.ops for i in o.inputs]
        sg = schema.SubGraphT()
        sg.tensors, sg.operators, sg.outputs = self.tensors, self.ops, list(outputs)
        sg.inputs = list(dict.fromkeys(i for i in consumed if i not in produced
                                       and self.tensors[i].buffer == 0))
        model = schema.ModelT()
        model.version, model.subgraphs, model.buffers = 3, [sg], self.buffers
        model.operatorCodes = []
        for code in self.codes:
            c = schema.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            model.operatorCodes.append(c)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def options(cls_name: str, **fields):
    o = getattr(schema, cls_name)()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def conv(b: ModelBuilder, x: int, in_scale: float, out_shape, out_scale, zero_point=3,
         kernel=(1, 1), stride=1, padding=VALID, act=0, dilation=1, per_channel=True) -> int:
    """Append a CONV_2D reading tensor x; return its output tensor."""
    in_c = b.tensors[x].shape[3]
    w, bias = b.weighted([out_shape[3], *kernel, in_c], in_scale, 0, per_channel)
    y = b.act(out_shape, out_scale, zero_point)
    return b.op("CONV_2D", options("Conv2DOptionsT", padding=padding, strideH=stride,
                                   strideW=stride, fusedActivationFunction=act,
                                   dilationHFactor=dilation, dilationWFactor=dilation),
                [x, w, bias], y)


def stem(b: ModelBuilder, shape, out_scale=0.05, zero_point=-5) -> int:
    """Return the output of x -> 1x1 CONV_2D (an int8 weight every model needs)."""
    x = b.act(shape, 0.02, -3)
    return conv(b, x, 0.02, shape, out_scale, zero_point)


def case_conv_same_stride2_relu6(b):
    x = b.act([1, 7, 9, 3], 0.03, 7)
    return conv(b, x, 0.03, [1, 4, 5, 8], 0.04, -20, (3, 3), 2, SAME, RELU6)


def case_conv_dilated_relu_n1_to_1_per_tensor(b):
    x = b.act([1, 9, 8, 4], 0.05, -2)
    return conv(b, x, 0.05, [1, 5, 4, 6], 0.02, 4, (3, 3), 1, VALID, RELU_N1_TO_1, 2, False)


def case_depthwise_multiplier_same(b):
    x = stem(b, [1, 6, 7, 3])
    w, bias = b.weighted([1, 5, 5, 6], 0.05, 3)
    y = b.act([1, 6, 7, 6], 0.03, 2)
    return b.op("DEPTHWISE_CONV_2D", options(
        "DepthwiseConv2DOptionsT", padding=SAME, strideH=1, strideW=1, depthMultiplier=2,
        fusedActivationFunction=RELU, dilationHFactor=1, dilationWFactor=1), [x, w, bias], y)


def case_depthwise_stride2_dilated(b):
    x = stem(b, [1, 9, 10, 5])
    w, bias = b.weighted([1, 3, 3, 5], 0.05, 3)
    y = b.act([1, 5, 5, 5], 0.02, -1)
    return b.op("DEPTHWISE_CONV_2D", options(
        "DepthwiseConv2DOptionsT", padding=SAME, strideH=2, strideW=2, depthMultiplier=1,
        fusedActivationFunction=RELU6, dilationHFactor=2, dilationWFactor=2), [x, w, bias], y)


def fully_connected(b, per_channel):
    x = stem(b, [1, 3, 1, 16])
    w, bias = b.weighted([5, 16], 0.05, 0, per_channel)
    y = b.act([3, 5], 0.05, 1)
    return b.op("FULLY_CONNECTED", options("FullyConnectedOptionsT",
                                           fusedActivationFunction=RELU if per_channel else 0),
                [x, w, bias], y)


def case_fully_connected_per_channel_rows(b):
    return fully_connected(b, True)


def case_fully_connected_per_tensor(b):
    return fully_connected(b, False)


def case_add_relu6(b):
    x1 = stem(b, [1, 4, 5, 6], 0.05, -5)
    x2 = conv(b, x1, 0.05, [1, 4, 5, 6], 0.11, 9)
    y = b.act([1, 4, 5, 6], 0.08, -30)
    return b.op("ADD", options("AddOptionsT", fusedActivationFunction=RELU6), [x1, x2], y)


def case_average_pool_same_clipped(b):
    x = stem(b, [1, 7, 7, 4])
    y = b.act([1, 4, 4, 4], 0.05, -5)
    return b.op("AVERAGE_POOL_2D", options("Pool2DOptionsT", padding=SAME, strideH=2, strideW=2,
                                           filterHeight=3, filterWidth=3,
                                           fusedActivationFunction=RELU), [x], y)


def mean(b, in_shape, axes, keep_dims, out_shape):
    x = stem(b, in_shape)
    axis = b.tensor([len(axes)], "int32", data=axes)
    y = b.act(out_shape, 0.03, 11)
    return b.op("MEAN", options("ReducerOptionsT", keepDims=keep_dims), [x, axis], y)


def case_mean_spatial_keep_dims(b):
    return mean(b, [1, 5, 7, 6], [1, 2], True, [1, 1, 1, 6])


def case_mean_channels(b):
    return mean(b, [1, 5, 7, 6], [3], False, [1, 5, 7])


def case_mean_rows_and_channels(b):
    return mean(b, [1, 5, 7, 6], [1, 3], False, [1, 7])


def case_softmax_beta_half(b):
    x = stem(b, [2, 3, 1, 7], 0.5, 0)
    y = b.act([2, 3, 1, 7], 1 / 256, -128)
    return b.op("SOFTMAX", options("SoftmaxOptionsT", beta=0.5), [x], y)


def case_softmax_fine_scale(b):
    x = stem(b, [1, 1, 1, 10], 0.02, 0)
    y = b.act([1, 1, 1, 10], 1 / 256, -128)
    return b.op("SOFTMAX", options("SoftmaxOptionsT", beta=1.0), [x], y)


def case_quantize_float(b):
    x = b.tensor([1, 4, 4, 3], "float32")
    q = b.op("QUANTIZE", None, [x], b.act([1, 4, 4, 3], 0.02, -3))
    return conv(b, q, 0.02, [1, 4, 4, 3], 0.05, 1)


def case_quantize_uint8_and_requantize(b):
    x = b.tensor([1, 4, 4, 3], "uint8", 0.03, 120)
    q = b.op("QUANTIZE", None, [x], b.act([1, 4, 4, 3], 0.03, -8))
    c = conv(b, q, 0.03, [1, 4, 4, 3], 0.05, 1)
    return b.op("QUANTIZE", None, [c], b.act([1, 4, 4, 3], 0.0731, -17))


def case_dequantize_pad_transpose(b):
    x = stem(b, [1, 3, 4, 5])
    padded = b.tensor([4, 2], "int32", data=[[0, 0], [1, 2], [0, 1], [0, 0]])
    p = b.op("PAD", None, [x, padded], b.act([1, 6, 5, 5], 0.05, -5))
    perm = b.tensor([4], "int32", data=[3, 1, 0, 2])
    t = b.op("TRANSPOSE", None, [p, perm], b.act([5, 6, 1, 5], 0.05, -5))
    return b.op("DEQUANTIZE", None, [t], b.tensor([5, 6, 1, 5], "float32"))


CASES = [f for name, f in sorted(globals().items()) if name.startswith("case_")]


@needs_tflm
@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__[5:])
def test_synthetic_model_matches_tflm(case):
    builder = ModelBuilder(np.random.default_rng(0))
    output = case(builder)
    model = builder.finish([output])
    graph = load_tflite(model, label=case.__name__)
    for seed in SEEDS:
        inputs = random_inputs(graph, seed)
        if graph.tensor(graph.inputs[0]).dtype is DType.FLOAT32:
            # half-integer multiples of the scale: QUANTIZE's round-half-away ties
            inputs[0].ravel()[:8] = np.float32(0.02) * np.float32([0.5, -0.5, 1.5, -2.5, 3.5,
                                                                   100.5, -99.5, 1e4])
        assert differing_bytes(graph, model, inputs) == {}, f"seed {seed}"
    result = reference.run(graph, inputs)[0]
    distinct = len(np.unique(result))
    assert distinct >= min(4, math.prod(result.shape)), "degenerate case: output saturated"


ZOO_WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.4)
ZOO_RESOLUTIONS = (96, 128, 160, 192, 224)


@needs_tflm
@pytest.mark.parametrize("alpha, resolution", [
    pytest.param(a, r, marks=() if (a, r) in ((0.35, 96), (1.0, 224)) else pytest.mark.slow)
    for a in ZOO_WIDTHS for r in ZOO_RESOLUTIONS])
def test_synthesized_mobilenet_v2_matches_tflm(alpha, resolution):
    from mnv2gen.frontend.tflite_writer import write_tflite
    from mnv2gen.zoo import synthesize

    graph = synthesize("mobilenet-v2", alpha, resolution, 1000, seed=1)
    model = write_tflite(graph)
    graph = load_tflite(model)  # compare through the file, as a user would get it
    assert differing_bytes(graph, model, random_inputs(graph, 2)) == {}
