"""TFLite front end: every shared model translates; bad input fails with one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import model_params

from mnv2gen.errors import UnsupportedError
from mnv2gen.frontend.tflite import load_tflite
from mnv2gen.ir import DType, OpKind
from mnv2gen.loader import load_model

schema = pytest.importorskip(
    "tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
    reason="tflite-micro's schema object API is needed to write altered models")


@pytest.mark.parametrize("path", model_params())
def test_every_shared_model_translates_and_inspects(path, run_cli):
    graph = load_model(path)
    assert graph.ops and all(op.kind is not OpKind.PAD for op in graph.ops)
    code, out, err = run_cli("inspect", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["totals"]["macs"] > 1_000_000
    assert report["blocks"], "every shared model is a MobileNet with blocks"
    assert report["sha256"] == graph.source_sha256


def test_legacy_opcodes_and_blocks_of_person_detect(shared_model):
    graph = load_model(shared_model("tflm_person_detect"))
    kinds = [op.kind for op in graph.ops]
    # only deprecated_builtin_code is set in this file: max(deprecated, builtin) must be read
    assert kinds.count(OpKind.DEPTHWISE_CONV_2D) == 14 and kinds.count(OpKind.CONV_2D) == 14
    assert kinds[-3:] == [OpKind.CONV_2D, OpKind.RESHAPE, OpKind.SOFTMAX]


def _mutated(path, mutate) -> bytes:
    """Return the model at `path` re-serialised after `mutate(ModelT)`."""
    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    mutate(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _set_opcode(model, code: int) -> None:
    model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex].builtinCode = code
    model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex].deprecatedBuiltinCode = code


def test_round_trip_through_object_api_is_identical(shared_model):
    path = shared_model("tflm_person_detect")
    a, b = load_tflite(path), load_tflite(_mutated(path, lambda m: None))
    assert [op.kind for op in a.ops] == [op.kind for op in b.ops]
    for name, t in a.tensors.items():
        if t.is_const:
            assert np.array_equal(t.data, b.tensor(name).data)


def _legacy_uint8(model) -> None:
    """Make operator 0 a TensorFlow 1 QAT convolution: uint8 input and asymmetric uint8
    weights (what TFLite Micro no longer runs either)."""
    sg = model.subgraphs[0]
    op = sg.operators[0]
    for index in (op.inputs[0], op.inputs[1]):
        sg.tensors[index].type = schema.TensorType.UINT8
        sg.tensors[index].quantization.zeroPoint = [128]


@pytest.mark.parametrize("mutate, message", [
    (_legacy_uint8, "legacy uint8 quantisation"),
    (lambda m: _set_opcode(m, schema.BuiltinOperator.LSTM),
     "operator 0 (LSTM) is not supported"),
    (lambda m: setattr(m.subgraphs[0].tensors[m.subgraphs[0].operators[0].inputs[1]], "type",
                       schema.TensorType.UINT8), "weights"),
    (lambda m: setattr(m.subgraphs[0].tensors[m.subgraphs[0].operators[0].outputs[0]], "type",
                       schema.TensorType.INT16), "activations must be int8"),
    (lambda m: setattr(m.subgraphs[0].tensors[m.subgraphs[0].operators[0].inputs[0]], "type",
                       schema.TensorType.FLOAT32), "computes in float32"),
    (lambda m: m.subgraphs.append(m.subgraphs[0]), "2 subgraphs"),
])
def test_unsupported_models_are_rejected_with_one_line(shared_model, tmp_path, run_cli,
                                                      mutate, message):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_mutated(shared_model("tflm_person_detect"), mutate))
    with pytest.raises(UnsupportedError) as raised:
        load_tflite(bad)
    assert message in raised.value.message
    code, out, err = run_cli("inspect", bad)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.splitlines()) == 2 and err.splitlines()[1].startswith("hint: ")
    if "MUL" in message:
        assert "supported operators: CONV_2D, DEPTHWISE_CONV_2D" in err


def test_float_only_model_is_rejected(shared_model, tmp_path, run_cli):
    def to_float(model):
        sg = model.subgraphs[0]
        for t in sg.tensors:
            if t.type == schema.TensorType.INT8:
                t.type, t.quantization = schema.TensorType.FLOAT32, None
                buf = model.buffers[t.buffer]
                if buf.data is not None and len(buf.data):
                    buf.data = np.repeat(np.asarray(buf.data, np.uint8), 4)
    bad = tmp_path / "float.tflite"
    bad.write_bytes(_mutated(shared_model("tflm_person_detect"), to_float))
    code, _, err = run_cli("inspect", bad)
    assert code == 2 and "float32" in err and "int8" in err


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"", "not a TFLite model"),
    (b"hello world, this is not a model", "not a TFLite model"),
    (b"\x08\x00\x00\x00ONNX" + b"\x00" * 64, "not a TFLite model"),
])
def test_unreadable_files_fail_cleanly(tmp_path, run_cli, content, message):
    path = tmp_path / "m.tflite"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run_cli("inspect", path)
    assert code == 2 and message in err and "Traceback" not in err


def test_truncated_model_fails_cleanly(shared_model, tmp_path, run_cli):
    data = shared_model("tflm_person_detect").read_bytes()
    for cut in (16, 1000, len(data) // 2, len(data) - 7):
        path = tmp_path / f"cut{cut}.tflite"
        path.write_bytes(data[:cut])
        code, _, err = run_cli("inspect", path)
        assert code == 2 and err.startswith("error: "), (cut, err)


def test_uint8_input_and_float_output_edges(shared_model):
    graph = load_model(shared_model("st_nota_mobilenet_v2_0.35_224_flowers_int8"))
    assert graph.tensor(graph.inputs[0]).dtype is DType.UINT8
    assert graph.tensor(graph.outputs[0]).dtype is DType.FLOAT32
    assert graph.ops[0].kind is OpKind.QUANTIZE and graph.ops[-1].kind is OpKind.DEQUANTIZE
