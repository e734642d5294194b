"""The front door (mnv2gen.frontend.validate): broken fields are refused by name, in one line.

Each case edits one field of a small valid model (in the flatbuffer, so the reader sees
exactly what a corrupt or hostile file would hold) and checks the message names the
operator or tensor, the field and the value.
"""

from __future__ import annotations

import math
import os
import struct

import numpy as np
import pytest
from fuzz_models import consistent_model, consistent_tflite
from fuzz_mutator import TfliteSites

from mnv2gen.errors import ModelError, UnsupportedError
from mnv2gen.frontend.tflite import load_tflite, read_model_bytes
from mnv2gen.frontend.validate import LIMITS, reference_work, validate_graph
from mnv2gen.frontend.validate_rules import RULES
from mnv2gen.ir import OpKind
from mnv2gen.shapes import SHAPE_RULES

BASE = consistent_tflite(6, seed=7)
SITES = {label: (pos, fmt) for label, pos, fmt in TfliteSites(BASE).sites}


def _patched(**fields) -> bytes:
    buf = bytearray(BASE)
    for label, value in fields.items():
        pos, fmt = SITES[label]
        struct.pack_into("<" + fmt, buf, pos, value)
    return bytes(buf)


def _refusal(data: bytes) -> str:
    with pytest.raises((ModelError, UnsupportedError)) as info:
        load_tflite(data, label="m.tflite")
    message = info.value.message
    assert message.startswith("m.tflite: ") and "\n" not in message and info.value.hint
    return message


def test_every_operator_kind_has_a_validation_row():
    assert set(RULES) == set(OpKind), "add a row to validate_rules.RULES for every new kind"
    for kind, rule in RULES.items():
        counts = SHAPE_RULES[kind][0]
        assert counts.start <= len(rule.inputs) <= counts.stop - 1, kind
        assert rule.extra is not None or len(rule.inputs) >= counts.stop - 1, kind


def test_the_unmodified_model_passes():
    assert load_tflite(BASE).ops


@pytest.mark.parametrize("value", [0, -1, 40000])
def test_stride_out_of_range_is_named(value):
    message = _refusal(_patched(**{"op0.option@8": value}))  # Conv2DOptions.stride_h
    assert "operator 0 (CONV_2D)" in message and "stride" in message and str(value) in message


@pytest.mark.parametrize("value", [0, -3])
def test_dilation_below_one_is_named(value):
    from dataclasses import replace

    graph = consistent_model(6)
    op = graph.ops[1]
    broken = replace(op, attrs=replace(op.attrs, dilation_w=value))
    graph = graph.replace(ops=tuple(broken if o is op else o for o in graph.ops))
    with pytest.raises(ModelError, match=rf"operator 1 \(CONV_2D\): dilation \(1, {value}\)"):
        validate_graph(graph, "m")


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e38,
                                   1e-45])
def test_bad_activation_scales_are_refused(scale):
    message = _refusal(_patched(**{"tensor0.scale[0]": scale}))
    assert "scale" in message and ("nan" in message or "inf" in message or "e" in message)


@pytest.mark.parametrize("zero_point", [128, 255, -129, 1 << 40])
def test_zero_points_outside_int8_are_refused(zero_point):
    message = _refusal(_patched(**{"tensor0.zero_point[0]": zero_point}))
    assert f"zero point {zero_point}" in message and "int8" in message


def test_operator_index_out_of_range_is_named():
    message = _refusal(_patched(**{"op1.inputs[0]": 999}))
    assert "operator 1" in message and "tensor 999" in message and "does not exist" in message


def test_bad_opcode_index_is_named():
    message = _refusal(_patched(**{"op2.opcode_index": 77}))
    assert "operator 2 has opcode index 77" in message


def test_unknown_builtin_code_is_named():
    message = _refusal(_patched(**{"opcode0.builtin_code": 9999, "opcode0.deprecated_code": 0}))
    assert "builtin code 9999" in message and "not supported" in message


def test_buffer_index_out_of_range_is_named():
    site = next(k for k in SITES if k.endswith(".buffer") and k != "tensor0.buffer")
    buf = bytearray(BASE)
    pos, fmt = SITES[site]
    struct.pack_into("<" + fmt, buf, pos, 12345)
    assert "buffer 12345, which does not exist" in _refusal(bytes(buf))


def test_absurd_vector_lengths_are_refused_without_reading_them():
    message = _refusal(_patched(**{"op0.inputs.length": 0x7FFFFFF0}))
    assert "operator 0" in message


def test_options_of_another_type_are_named():
    message = _refusal(_patched(**{"op0.options_type": 2}))  # DepthwiseConv2DOptions
    assert "has options of type DepthwiseConv2DOptions, expected Conv2DOptions" in message


def test_shapes_beyond_int16_band_rows_are_refused_with_numbers():
    graph = consistent_model(8)
    big = {n: t if t.is_const else type(t)(t.name, (1, 40000, *t.shape[2:]) if len(t.shape) == 4
                                           else t.shape, t.dtype, t.quant, t.data)
           for n, t in graph.tensors.items()}
    with pytest.raises(ModelError, match=r"dimension 1 is 40,000; dimensions must be 1 to 32,767"):
        validate_graph(graph.replace(tensors=big), "m")


def test_accumulator_overflow_is_refused():
    graph = consistent_model(4)
    op = graph.ops[0]
    bias = graph.tensor(op.inputs[2])
    data = bias.data.copy()
    data[0] = np.int32((1 << 31) - 100)
    tensors = dict(graph.tensors)
    tensors[bias.name] = type(bias)(bias.name, bias.shape, bias.dtype, bias.quant, data)
    with pytest.raises(UnsupportedError, match="output channel 0 can overflow the int32"):
        validate_graph(graph.replace(tensors=tensors), "m")


def test_requantisation_shift_above_30_is_refused():
    graph = consistent_model(4)
    out = graph.tensor(graph.ops[0].outputs[0])
    q = type(out.quant)((1e-15,), out.quant.zero_point)
    tensors = dict(graph.tensors)
    tensors[out.name] = type(out)(out.name, out.shape, out.dtype, q)
    with pytest.raises(ModelError, match="left shift of"):
        validate_graph(graph.replace(tensors=tensors), "m")


def test_reference_work_is_bounded_before_running():
    macs, work = reference_work(consistent_model(16))
    assert 0 < macs < LIMITS.max_reference_macs and 0 < work < LIMITS.max_reference_bytes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_reading_refuses_devices_fifos_directories_and_huge_files(tmp_path):
    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    for path, text in (("/dev/zero", "not a regular file"), (fifo, "not a regular file"),
                       (tmp_path, "is a directory"), (tmp_path / "none", "no such file")):
        with pytest.raises(ModelError, match=text):
            read_model_bytes(path)
    big = tmp_path / "big.tflite"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(ModelError, match="model files of at most 1,000 bytes"):
        read_model_bytes(big, limit=1000)


def test_limits_keep_the_generated_integer_types_exact():
    assert LIMITS.max_dim == 2**15 - 1            # int16_t band rows (mnv2_fused.h)
    assert LIMITS.max_tensor_bytes == 2**31 - 1   # int32_t arena offsets
    assert LIMITS.max_left_shift == 30
    assert math.isclose(LIMITS.min_scale, np.finfo(np.float32).tiny)
