"""Model zoo: architecture vs published Keras MobileNets, quantisation, determinism, TFLM."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mnv2gen import zoo
from mnv2gen.errors import MnvError
from mnv2gen.frontend.tflite_writer import write_tflite
from mnv2gen.ir import Activation, DType, OpKind
from mnv2gen.reference import run_all
from mnv2gen.zoo_float import forward, sample_images

# Keras applications MobileNetV2 (model.summary()): per block (expand or None, project).
KERAS_V2 = {
    1.0: dict(stem=32, last=1280, blocks=[
        (None, 16), (96, 24), (144, 24), (144, 32), (192, 32), (192, 32), (192, 64),
        (384, 64), (384, 64), (384, 64), (384, 96), (576, 96), (576, 96), (576, 160),
        (960, 160), (960, 160), (960, 320)]),
    0.35: dict(stem=16, last=1280, blocks=[
        (None, 8), (48, 8), (48, 8), (48, 16), (96, 16), (96, 16), (96, 24), (144, 24),
        (144, 24), (144, 24), (144, 32), (192, 32), (192, 32), (192, 56), (336, 56),
        (336, 56), (336, 112)]),
}
V2_ADD_BLOCKS = (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)
WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.4)
RESOLUTIONS = (96, 128, 160, 192, 224)
QUICK = {(0.35, 96), (1.0, 160), (1.4, 224)}  # the rest of the sweep is marked slow


@functools.cache
def graph_of(arch: str, alpha: float, resolution: int, classes: int = 1000, seed: int = 0,
             channels: int = 3):
    return zoo.synthesize(arch, alpha, resolution, classes, seed, channels)


def weights_of(graph, name: str):
    return graph.tensor(f"{name}/weights")


@pytest.mark.parametrize("v, expected", [
    (3.2, 8), (5.6, 8), (11.2, 16), (18, 24), (22.4, 24), (33.6, 32), (44.8, 48), (89.6, 88),
    (134.4, 136), (224, 224), (1792, 1792), (1280 * 1.3, 1664),
])
def test_make_divisible(v, expected):
    assert zoo.make_divisible(v) == expected


@pytest.mark.parametrize("alpha", sorted(KERAS_V2))
def test_v2_channels_match_published_keras(alpha):
    """Channel counts equal Keras MobileNetV2(alpha) for alpha 0.35 and 1.0, block by block."""
    keras = KERAS_V2[alpha]
    g = graph_of("mobilenet-v2", alpha, 32)
    assert weights_of(g, "conv1").shape == (keras["stem"], 3, 3, 3)
    in_c = keras["stem"]
    for i, (expand, project) in enumerate(keras["blocks"]):
        if expand is None:
            assert f"block_{i}_expand" not in g.tensors
        else:
            assert weights_of(g, f"block_{i}_expand").shape == (expand, 1, 1, in_c)
        assert weights_of(g, f"block_{i}_depthwise").shape == (1, 3, 3, expand or in_c)
        assert weights_of(g, f"block_{i}_project").shape == (project, 1, 1, expand or in_c)
        in_c = project
    assert weights_of(g, "conv_last").shape == (keras["last"], 1, 1, in_c)
    assert weights_of(g, "logits").shape == (1000, keras["last"])


def test_v2_wide_last_layer_and_stem():
    g = graph_of("mobilenet-v2", 1.4, 32)
    assert weights_of(g, "conv1").shape[0] == 48
    assert weights_of(g, "block_16_project").shape[0] == 448
    assert weights_of(g, "conv_last").shape[0] == 1792


def test_v2_structure_and_names():
    g = graph_of("mobilenet-v2", 1.0, 32)
    kinds = [op.kind for op in g.ops]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        OpKind.CONV_2D: 35, OpKind.DEPTHWISE_CONV_2D: 17, OpKind.ADD: 10, OpKind.MEAN: 1,
        OpKind.FULLY_CONNECTED: 1, OpKind.SOFTMAX: 1}
    adds = [op for op in g.ops if op.kind is OpKind.ADD]
    assert [op.name for op in adds] == [f"block_{i}_add" for i in V2_ADD_BLOCKS]
    assert adds[0].inputs == ("block_1_project", "block_2_project")
    depthwise = {op.name: op.attrs for op in g.ops if op.kind is OpKind.DEPTHWISE_CONV_2D}
    strides = [depthwise[f"block_{i}_depthwise"].stride_h for i in range(17)]
    assert strides == [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
    mean = next(op for op in g.ops if op.kind is OpKind.MEAN)
    assert (mean.attrs.axes, mean.attrs.keep_dims) == ((1, 2), False)
    assert g.tensor("global_pool").shape == (1, 1280)
    assert g.inputs == ("input",) and g.outputs == ("predictions",)


def _conv_channels(graph) -> list[int]:
    """Output channels of every CONV_2D / DEPTHWISE_CONV_2D, in execution order."""
    out = []
    for op in graph.ops:
        if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
            out.append(graph.tensor(op.outputs[0]).shape[-1])
    return out


@pytest.mark.parametrize("prefix, alpha, arch, classes, channels", [
    ("aquapapaya_keras_mobilenet_v2_1.0_224", 1.0, "mobilenet-v2", 1000, 3),
    ("st_nota_mobilenet_v2_0.35_224_flowers_int8", 0.35, "mobilenet-v2", 5, 3),
    ("tflm_person_detect_mbv1_0.25_96", 0.25, "mobilenet-v1", 2, 1),
])
def test_channels_match_real_converted_models(shared_model, prefix, alpha, arch, classes,
                                              channels):
    """Every conv's output channels equal those of a real converted model of the same width."""
    from mnv2gen.frontend.tflite import load_tflite

    real = load_tflite(shared_model(prefix))
    ours = graph_of(arch, alpha, 32, classes, 0, channels)
    assert _conv_channels(ours) == _conv_channels(real)


def test_v1_structure():
    g = graph_of("mobilenet-v1", 1.0, 32)
    pointwise = [weights_of(g, f"conv_pw_{i}").shape[0] for i in range(1, 14)]
    assert pointwise == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    strides = [next(op for op in g.ops if op.name == f"conv_dw_{i}").attrs.stride_h
               for i in range(1, 14)]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert [op.kind for op in g.ops[-4:]] == [OpKind.AVERAGE_POOL_2D, OpKind.CONV_2D,
                                              OpKind.RESHAPE, OpKind.SOFTMAX]
    assert g.tensor("reshape").shape == (1, 1000)
    assert not any(op.kind is OpKind.ADD for op in g.ops)


def test_quantisation_follows_the_converter():
    g = graph_of("mobilenet-v2", 0.35, 96)
    x = g.tensor("input")
    assert (x.shape, x.dtype, x.scale, x.zero_point) == ((1, 96, 96, 3), DType.INT8,
                                                         float(np.float32(1 / 127.5)), -1)
    assert g.tensor("predictions").quant.scale == (1 / 256,)
    assert g.tensor("predictions").zero_point == -128
    for op in g.ops:
        out = g.tensor(op.outputs[0])
        if getattr(op.attrs, "activation", None) is Activation.RELU6:
            assert (out.scale, out.zero_point) == (float(np.float32(6 / 255)), -128)
        if op.kind not in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED):
            continue
        s_in = np.float32(g.tensor(op.inputs[0]).scale)
        w, b = g.tensor(op.inputs[1]), g.tensor(op.inputs[2])
        axis = 3 if op.kind is OpKind.DEPTHWISE_CONV_2D else 0
        per_channel = op.kind is not OpKind.FULLY_CONNECTED
        assert len(w.quant.scale) == (w.shape[axis] if per_channel else 1)
        assert w.quant.axis == axis and set(w.quant.zero_point) == {0}
        peak = np.abs(w.data.astype(int)).max(axis=tuple(i for i in range(4) if i != axis)) \
            if per_channel else np.abs(w.data.astype(int)).max()
        assert np.all(peak == 127)  # symmetric, scale = max|w| / 127
        assert b.dtype is DType.INT32 and set(b.quant.zero_point) == {0}
        expected = (s_in * np.array(w.quant.scale, np.float32)).astype(np.float32)
        assert np.array_equal(np.array(b.quant.scale, np.float32),
                              np.broadcast_to(expected, (b.shape[0],)) if per_channel
                              else expected)
    add = next(op for op in g.ops if op.kind is OpKind.ADD)
    scales = {g.tensor(n).scale for n in (*add.inputs, *add.outputs)}
    assert len(scales) == 3  # each calibrated on its own


def _fresh_run(arch, alpha, resolution, count=4):
    """Return (graph, float twin's activations, int8 activations per image) on fresh images."""
    g = graph_of(arch, alpha, resolution)
    layers = zoo.float_layers(g, zoo.architecture(arch, alpha, resolution, 1000))
    images = sample_images(count, resolution, 3, seed=1234)
    floats = dict(forward(layers, images))
    ints = [run_all(g, [x]) for x in _int8_images(count, resolution, seed=1234)]
    return g, floats, ints


@pytest.mark.parametrize("arch, alpha, resolution", [
    ("mobilenet-v2", 0.35, 96), ("mobilenet-v2", 1.0, 128), ("mobilenet-v1", 0.25, 96)])
def test_activations_use_the_int8_range_without_saturating(arch, alpha, resolution):
    """On fresh images the int8 activations span most of their range and the linear ones
    (calibrated, not fixed like RELU6) almost never saturate."""
    g, _, runs = _fresh_run(arch, alpha, resolution)
    spans, clipped = {}, {}
    for op in g.ops:
        name = op.outputs[0]
        if name == "predictions":
            continue
        q = np.concatenate([r[name].reshape(-1) for r in runs]).astype(np.float64)
        spans[name] = float(np.percentile(q, 99.9) - np.percentile(q, 0.1)) / 255
        if getattr(op.attrs, "activation", Activation.NONE) is not Activation.RELU6:
            clipped[name] = float(np.mean((q == -128) | (q == 127)))
    assert np.median(list(spans.values())) > 0.8
    assert min(spans.values()) > 0.3, min(spans, key=spans.get)
    assert max(clipped.values()) < 0.005, max(clipped, key=clipped.get)
    assert np.mean(list(clipped.values())) < 0.0005


@pytest.mark.parametrize("arch, alpha, resolution, logits", [
    ("mobilenet-v2", 0.35, 96, "logits"), ("mobilenet-v1", 0.25, 96, "conv_preds")])
def test_int8_tracks_its_float_twin(arch, alpha, resolution, logits):
    """The int8 logits stay within a few percent of the float model the graph represents
    (int8 weights * scales) on fresh images, as a trained network's do: the weights are
    matched to their inputs, so quantisation noise is not amplified through the layers."""
    g, floats, runs = _fresh_run(arch, alpha, resolution)
    t = g.tensor(logits)
    for i, run in enumerate(runs):
        q = t.scale * (run[logits].reshape(-1).astype(np.float64) - t.zero_point)
        f = floats[logits][i].reshape(-1).astype(np.float64)
        assert np.linalg.norm(q - f) / np.linalg.norm(f - f.mean()) < 0.1
        assert q.argmax() == f.argmax()


def test_deterministic_bytes():
    a = zoo.synthesize_tflite("mobilenet-v2", 0.35, 96, 10, seed=3)
    assert a == zoo.synthesize_tflite("mobilenet-v2", 0.35, 96, 10, seed=3)
    assert a != zoo.synthesize_tflite("mobilenet-v2", 0.35, 96, 10, seed=4)
    v1 = zoo.synthesize_tflite("mobilenet-v1", 0.25, 96, 2, seed=0, channels=1)
    assert v1 == zoo.synthesize_tflite("mobilenet-v1", 0.25, 96, 2, seed=0, channels=1)


@pytest.mark.parametrize("kwargs, allowed", [
    (dict(arch="mobilenet-v3"), "mobilenet-v2, mobilenet-v1"),
    (dict(alpha=0.0), "0.1 to 2.0"),
    (dict(alpha=3.0), "0.1 to 2.0"),
    (dict(resolution=16), "32 to 512"),
    (dict(resolution=96.5), "32 to 512"),
    (dict(classes=0), "1 to 10000"),
    (dict(channels=5), "1 to 4"),
    (dict(seed=-1), ">= 0"),
])
def test_bad_arguments_raise_one_line_mnverror(kwargs, allowed):
    args = dict(arch="mobilenet-v2", alpha=0.35, resolution=96, classes=10, seed=0, channels=3)
    args.update(kwargs)
    with pytest.raises(MnvError) as err:
        zoo.synthesize(**args)
    assert "allowed" in err.value.message and allowed in err.value.message
    assert "\n" not in err.value.message


# --- TFLite Micro loads and runs what the zoo writes ---------------------------------

def _tflm_run(data: bytes, graph, images_int8):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    arena = 2 * sum(t.size_bytes for t in graph.activation_tensors()) + (1 << 20)
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena)
    outputs = []
    for image in images_int8:
        interpreter.set_input(image, 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)))
    return outputs


def _int8_images(count: int, resolution: int, channels: int = 3, seed: int = 5):
    x = sample_images(count, resolution, channels, seed)
    return [np.clip(np.round(im * 127.5) - 1, -128, 127).astype(np.int8)[None] for im in x]


@pytest.mark.parametrize("alpha, resolution", [
    pytest.param(a, r, marks=() if (a, r) in QUICK else pytest.mark.slow)
    for a in WIDTHS for r in RESOLUTIONS])
def test_v2_sweep_runs_in_tflm(alpha, resolution):
    pytest.importorskip("tflite_micro")
    g = graph_of("mobilenet-v2", alpha, resolution)
    (out,) = _tflm_run(write_tflite(g), g, _int8_images(1, resolution))
    assert out.shape == (1, 1000) and out.dtype == np.int8
    assert 0.5 < (out.astype(np.float64) + 128).sum() / 256 < 1.5  # softmax sums to ~1


@pytest.mark.parametrize("alpha, resolution, channels", [
    (0.25, 96, 1), (0.25, 96, 3), pytest.param(1.0, 224, 3, marks=pytest.mark.slow)])
def test_v1_runs_in_tflm(alpha, resolution, channels):
    pytest.importorskip("tflite_micro")
    g = graph_of("mobilenet-v1", alpha, resolution, 1000, 0, channels)
    (out,) = _tflm_run(write_tflite(g), g, _int8_images(1, resolution, channels))
    assert out.shape == (1, 1000) and out.dtype == np.int8
    assert 0.5 < (out.astype(np.float64) + 128).sum() / 256 < 1.5


@pytest.mark.parametrize("arch, alpha", [("mobilenet-v2", 0.35), ("mobilenet-v1", 0.25)])
def test_outputs_depend_on_input(arch, alpha):
    pytest.importorskip("tflite_micro")
    g = graph_of(arch, alpha, 96)
    outs = _tflm_run(write_tflite(g), g, _int8_images(3, 96) + [np.zeros((1, 96, 96, 3), np.int8)])
    assert len({o.tobytes() for o in outs}) == 4
    assert len({int(o.argmax()) for o in outs}) > 1
