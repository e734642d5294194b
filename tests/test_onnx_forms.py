"""Every int8 ONNX form on tiny models: QDQ and QOperator, int8 and uint8 activations,
uint8/asymmetric weights, opsets 7-10, a symbolic batch; dynamic quantisation refused.

The quantised files are written by onnxruntime's own quantiser from tiny float models;
each conversion is checked against onnxruntime operator by operator (within 1 LSB) and
the IR against TFLite Micro operator by operator (0 differing bytes).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_builders as ob
import pytest
from onnx_oracles import (
    ir_differences,
    onnxruntime_int8,
    operator_differences,
    requantised_channels,
    tflm_differing_bytes,
)

from mnv2gen.loader import load_raw
from mnv2gen.reference import run
from mnv2gen.tflm import tflm_available

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402

needs_tflm = pytest.mark.skipif(not tflm_available(), reason="tflite-micro is not installed")

FORMS = [(fmt, act) for fmt in ("QDQ", "QOperator") for act in ("QInt8", "QUInt8")]


def _inputs(shape, count=8, seed=1):
    return np.random.default_rng(seed).standard_normal((count, *shape[1:])).astype(np.float32)


def _nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    """Return a function (builder, format, activation type) -> path of onnxruntime's static
    quantisation of that tiny float model (per-channel int8 weights), cached per module."""
    folder = tmp_path_factory.mktemp("ort_quantised")
    cache = {}

    def make(build, fmt: str, act: str, per_channel: bool = True, weights: str = "QInt8",
             prepare: bool = True):
        key = (build.__name__, fmt, act, per_channel, weights, prepare)
        if key not in cache:
            x = _inputs((1, 3, 16, 16), count=8, seed=3)

            class Reader(quantization.CalibrationDataReader):
                def __init__(self):
                    self.batches = iter([{"x": xi[None]} for xi in x])

                def get_next(self):
                    return next(self.batches, None)

            source = folder / f"{build.__name__}_{prepare}.onnx"
            if not source.exists():  # onnxruntime's pre-processing folds BatchNormalization
                onnx.save(build(), str(folder / "float.onnx"))
                if prepare:
                    quant_pre_process(str(folder / "float.onnx"), str(source),
                                      skip_symbolic_shape=True)
                else:
                    onnx.save(build(), str(source))
            out = folder / f"{'_'.join(map(str, key))}.onnx"
            quantization.quantize_static(
                str(source), str(out), Reader(), quant_format=getattr(quantization.QuantFormat,
                                                                      fmt),
                activation_type=getattr(quantization.QuantType, act),
                weight_type=getattr(quantization.QuantType, weights), per_channel=per_channel)
            cache[key] = out
        return cache[key]
    return make


def _compare_with_onnxruntime(path, graph, x):
    """Return (max LSB, differing values, values, operator kinds compared) over the output
    channels the conversion kept exact, and the max LSB of the re-quantised channels."""
    worst, differing, total, kinds, worst_requantised = 0, 0, 0, set(), 0
    requantised = requantised_channels(path, graph)
    for theirs in onnxruntime_int8(path, graph, x):
        for i, (d, chain) in operator_differences(graph, theirs).items():
            if i in requantised:
                worst_requantised = max(worst_requantised,
                                        int(d[..., requantised[i]].max()))
                d = d[..., ~requantised[i]]
            worst, differing, total = max(worst, int(d.max(initial=0))), differing + int(
                np.count_nonzero(d)), total + d.size
            kinds.update(chain)
    return worst, differing, total, kinds, worst_requantised


@pytest.mark.parametrize("fmt, act", FORMS)
@pytest.mark.parametrize("build", [ob.nchw_residual, ob.nchw_pooled])
def test_onnxruntime_forms_match_onnxruntime_and_tflm(quantised, build, fmt, act):
    path = quantised(build, fmt, act)
    graph = load_raw(path)
    x = _inputs((1, 3, 16, 16), count=3, seed=9)
    worst, differing, total, kinds, _ = _compare_with_onnxruntime(path, graph, x)
    expected = {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"}
    if build is ob.nchw_residual:
        expected.add("ADD")
    elif fmt == "QDQ":  # onnxruntime keeps the pool's input quantisation: TFLite's pool
        expected.add("AVERAGE_POOL_2D")
    else:  # QLinearAveragePool rescales: the mean as a depthwise conv, rounding once
        ones = [op for op in graph.ops if op.kind.value == "DEPTHWISE_CONV_2D"
                and np.all(graph.tensor(op.inputs[1]).data == 1)]
        assert len(ones) == 1 and graph.tensor(ones[0].inputs[1]).shape == (1, 2, 2, 8)
    assert expected <= kinds and worst <= 1, (kinds, worst)
    print(f"\n{path.name}: {differing} of {total} values 1 LSB from onnxruntime")
    if act == "QUInt8":
        assert any("uint8 activations converted" in n for n in graph.notes)
    if fmt == "QOperator":
        assert any("QOperator form" in n for n in graph.notes)
    if tflm_available():
        compared, bad = tflm_differing_bytes(graph, [[xi[None]] for xi in _nhwc(x)])
        assert compared > 0 and bad == 0


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("build", [ob.nchw_residual, ob.nchw_pooled])
def test_uint8_and_int8_activations_convert_to_the_same_ir(quantised, build, fmt):
    """QInt8 and QUInt8 activations: the same IR, tensor for tensor (onnxruntime's uint8
    zero points are its int8 ones + 128 for the same ranges), so the same outputs.
    (QDQ and QOperator files differ where onnxruntime quantises them differently: QDQ
    calibrates the softmax output, QLinearSoftmax fixes it to 1/256.)"""
    first, other = (load_raw(quantised(build, fmt, act)) for act in ("QInt8", "QUInt8"))
    assert ir_differences(first, other) == []
    for xi in _nhwc(_inputs((1, 3, 16, 16), count=4, seed=5)):
        assert np.array_equal(run(first, [xi[None]])[0], run(other, [xi[None]])[0])


def test_uint8_weights_with_zero_point_128_are_exact_and_reach_minus_128(tmp_path):
    weights = np.random.default_rng(4).integers(0, 256, (4, 4, 1, 1)).astype(np.uint8)
    weights[1, 2, 0, 0] = 0  # q - zp = -128: kept as int8 -128, not re-quantised
    path = tmp_path / "u8w.onnx"
    onnx.save(ob.qdq_chain(np.uint8, weights, weight_zero=128), str(path))
    graph = load_raw(path)
    conv = next(op for op in graph.ops if op.kind.value == "CONV_2D")
    w = graph.tensor(conv.inputs[1])
    assert np.array_equal(w.data, (weights.astype(np.int16) - 128).transpose(0, 2, 3, 1))
    assert w.data.min() == -128 and not any(n.startswith("not exact") for n in graph.notes)
    x = _inputs((1, 4, 8, 8), count=4)
    worst, _, _, _, _ = _compare_with_onnxruntime(path, graph, x)
    assert worst <= 1
    if tflm_available():
        assert tflm_differing_bytes(graph, [[xi[None]] for xi in _nhwc(x)])[1] == 0


def test_asymmetric_uint8_weights_requantise_only_the_channels_that_do_not_fit(tmp_path):
    rng = np.random.default_rng(6)
    weights = rng.integers(60, 190, (4, 4, 1, 1)).astype(np.uint8)
    weights[2, 0, 0, 0], weights[2, 3, 0, 0] = 0, 255  # channel 2: q - 110 spans -110..145
    path = tmp_path / "asym.onnx"
    onnx.save(ob.qdq_chain(np.uint8, weights, weight_zero=110), str(path))
    graph = load_raw(path)
    conv = next(op for op in graph.ops if op.kind.value == "CONV_2D")
    w = graph.tensor(conv.inputs[1])
    exact = (weights.astype(np.int16) - 110).transpose(0, 2, 3, 1)
    assert np.array_equal(np.delete(w.data, 2, axis=0), np.delete(exact, 2, axis=0))
    scales = np.asarray(w.quant.scale, np.float32)
    assert len(scales) == 4 and np.all(np.delete(scales, 2) == np.float32(0.01))
    assert scales[2] == np.float32(0.01 * 145 / 127) and np.abs(w.data[2]).max() == 127
    note = next(n for n in graph.notes if n.startswith("not exact"))
    assert "1 of 4 output channels (in 1 of 1 layers)" in note
    theirs = onnxruntime_int8(path, graph, _inputs((1, 4, 8, 8), count=3))
    for t in theirs:
        ((d, _),) = operator_differences(graph, t).values()
        assert np.delete(d, 2, axis=-1).max() <= 1  # the exact channels
        assert d[..., 2].max() <= 2  # the re-quantised one: its weights moved < 0.6 step


def test_opset_10_qdq_model_is_upgraded_and_converts_as_opset_13(tmp_path):
    paths = []
    for opset in (10, 13):
        paths.append(tmp_path / f"opset{opset}.onnx")
        onnx.save(ob.qdq_chain(opset=opset), str(paths[-1]))
    old, new = (load_raw(p) for p in paths)
    assert "opset 10 upgraded to 13 with onnx.version_converter before import" in old.notes
    x = _nhwc(_inputs((1, 4, 8, 8), count=3))
    for xi in x:
        assert np.array_equal(run(old, [xi[None]])[0], run(new, [xi[None]])[0])


def test_opset_9_float_model_with_shape_plumbing_and_symbolic_batch(tmp_path, run_cli):
    from mnv2gen.frontend.float_model import run_float
    from mnv2gen.frontend.onnx_float import load_onnx_float

    path = tmp_path / "opset9.onnx"
    onnx.save(ob.opset9_plumbing(), str(path))
    model = load_onnx_float(path)
    assert model.onnx_input_shape == (1, 3, 16, 16)
    assert [layer.kind.value for layer in model.layers] == ["CONV_2D", "MEAN",
                                                            "FULLY_CONNECTED"]
    x = _inputs((1, 3, 16, 16), count=4)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    np.testing.assert_allclose(run_float(model, model.to_nhwc(x)), expected, atol=1e-5)
    code, out, err = run_cli("quantize", path, "--calibrate", "random", "-o",
                             tmp_path / "o.tflite", "--float-runner", "numpy")
    assert code == 0, err


def test_symbolic_batch_is_fixed_to_one_and_noted(tmp_path, run_cli):
    m = ob.qdq_chain(np.uint8)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch_size"
    path = tmp_path / "batch.onnx"
    onnx.save(m, str(path))
    code, out, err = run_cli("inspect", path)
    assert code == 0, err
    assert "float32[1, 8, 8, 4]" in out
    assert "note    the symbolic batch dimension of the input is fixed to 1" in out


def test_dynamic_quantisation_from_onnxruntime_is_refused(tmp_path, run_cli):
    source, dynamic = tmp_path / "f.onnx", tmp_path / "dyn.onnx"
    onnx.save(ob.nchw_residual(), str(source))
    quantization.quantize_dynamic(str(source), str(dynamic),
                                  weight_type=quantization.QuantType.QInt8)
    code, out, err = run_cli("plan", dynamic)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith(f"error: {dynamic}: node ") and "is dynamic quantisation" in err
    assert lines[1].startswith("hint: quantise statically") and "quantize_static" in lines[1]


def test_rescaling_pool_and_minus_128_weights_are_bit_exact_in_c(quantised, tmp_path):
    """The depthwise convolution standing for a rescaling pool (2x2 window, stride 2) and
    int8 weights of -128 through the generated C (host, portable kernels)."""
    from codegen_helpers import need_toolchain

    from mnv2gen.inputs import random_inputs
    from mnv2gen.loader import load_model
    from mnv2gen.pipeline import compile_graph
    from mnv2gen.verify import verify

    need_toolchain("host")
    weights = np.random.default_rng(4).integers(0, 256, (4, 4, 1, 1)).astype(np.uint8)
    weights[1, 2, 0, 0] = 0
    onnx.save(ob.qdq_chain(np.uint8, weights, weight_zero=128), str(tmp_path / "w.onnx"))
    for path in (quantised(ob.nchw_pooled, "QOperator", "QUInt8"), tmp_path / "w.onnx"):
        graph = load_model(path)
        report = verify(compile_graph(graph, "host", kernels="portable"),
                        [random_inputs(graph, seed) for seed in (1, 2)])
        assert report["bit_exact"], path.name


@pytest.mark.parametrize("act_type", [np.int8, np.uint8])
def test_channels_last_pool_and_integer_transpose(tmp_path, act_type):
    path = tmp_path / "nhwc_pool.onnx"
    onnx.save(ob.qlinear_channels_last_pool(act_type), str(path))
    graph = load_raw(path)
    assert [op.kind.value for op in graph.ops] == ["QUANTIZE", "CONV_2D", "MEAN", "DEQUANTIZE"]
    worst, _, _, kinds, _ = _compare_with_onnxruntime(path, graph,
                                                      _inputs((1, 4, 8, 8), count=4))
    assert kinds == {"CONV_2D", "MEAN"} and worst <= 1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _inputs((1, 4, 8, 8), count=4)
    theirs = np.concatenate([session.run(None, {"x": xi[None]})[0] for xi in x])
    ours = np.concatenate([run(graph, [xi[None]])[0] for xi in _nhwc(x)])
    assert ours.shape == theirs.shape == (4, 1, 1, 6)
    assert np.abs(ours - theirs).max() <= 1.01 * 0.01  # within 1 LSB of the output scale


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("weights, per_channel", [("QUInt8", False), ("QUInt8", True),
                                                  ("QInt8", False)])
def test_older_onnxruntime_defaults_uint8_weights_and_matmul_add_head(quantised, fmt, weights,
                                                                       per_channel):
    """uint8 weights (onnxruntime's old default), per tensor or per channel, and a
    MatMul + Add head left unfused (QLinearMatMul + QLinearAdd in QOperator form)."""
    path = quantised(ob.nchw_matmul_head, fmt, "QUInt8", per_channel, weights, prepare=False)
    if fmt == "QOperator":
        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert {"QLinearMatMul", "QLinearAdd"} <= ops
    graph = load_raw(path)
    assert [op.kind.value for op in graph.ops] == ["QUANTIZE", "CONV_2D", "MEAN",
                                                   "FULLY_CONNECTED", "DEQUANTIZE"]
    x = _inputs((1, 3, 16, 16), count=3, seed=9)
    worst, _, _, kinds, worst_requantised = _compare_with_onnxruntime(path, graph, x)
    assert kinds == {"CONV_2D", "MEAN", "FULLY_CONNECTED"} and worst <= 1
    assert worst_requantised <= 2
    inexact = [n for n in graph.notes if n.startswith("not exact")]
    assert bool(inexact) == bool(requantised_channels(path, graph))
    if tflm_available():
        assert tflm_differing_bytes(graph, [[xi[None]] for xi in _nhwc(x)])[1] == 0


def test_float_weights_quantised_in_the_graph_fold_to_the_stored_integers(tmp_path):
    """PyTorch-style QDQ: float weights -> QuantizeLinear -> DequantizeLinear; folded with
    ONNX's rounding (half to even) to the same IR as the integers stored."""
    from onnx import numpy_helper

    stored = ob.qdq_chain(np.uint8, np.random.default_rng(3).integers(
        0, 256, (4, 4, 1, 1)).astype(np.uint8), weight_zero=128)
    folded = onnx.ModelProto()
    folded.CopyFrom(stored)
    inits = {t.name: numpy_helper.to_array(t) for t in folded.graph.initializer}
    real = (inits["wq"].astype(np.float32) - 128) * inits["ws"]
    real[0, 0, 0, 0] = 2.5 * inits["ws"]  # a tie: rounds to even (2)
    expected = stored.graph.initializer[[t.name for t in stored.graph.initializer].index("wq")]
    expected.CopyFrom(numpy_helper.from_array(
        np.where(np.arange(real.size).reshape(real.shape) == 0, 130,
                 inits["wq"]).astype(np.uint8), "wq"))
    index = [t.name for t in folded.graph.initializer].index("wq")
    folded.graph.initializer[index].CopyFrom(numpy_helper.from_array(real, "wf"))
    folded.graph.node.insert(0, onnx.helper.make_node("QuantizeLinear", ["wf", "ws", "wz"],
                                                      ["wq"]))
    graphs = []
    for m, name in ((stored, "stored.onnx"), (folded, "folded.onnx")):
        onnx.save(m, str(tmp_path / name))
        graphs.append(load_raw(tmp_path / name))
    assert ir_differences(*graphs) == []
