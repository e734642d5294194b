"""Every family operator as a generated layer unit: one synthetic model chains them (NCHW
input transposed, broadcast MUL/SUB/ADD with constants, HARD_SWISH, MAX_POOL_2D, both
RESIZEs, an unfolded PAD, CONCATENATION with a constant, LOGISTIC, ARG_MAX with int64
indices, QUANTIZE to a uint8 output, and an output that is a constant), and the C must
equal the reference on the host and in QEMU, with both kernel backends.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from codegen_helpers import need_toolchain
from family_builders import decoding_model, graph, q, t8

from mnv2gen.inputs import random_inputs
from mnv2gen.ir import (
    AddAttrs,
    AxisAttrs,
    ConcatAttrs,
    DType,
    NoAttrs,
    Op,
    OpKind,
    PadAttrs,
    Padding,
    PoolAttrs,
    ResizeAttrs,
    TransposeAttrs,
)
from mnv2gen.pipeline import compile_graph, write_library
from mnv2gen.verify import verify


def heads_model():
    """Return the chain described in the module docstring."""
    rng = np.random.default_rng(5)
    qa, qh, qs = q(0.06, -4), q(0.04, -100), q(1 / 256, -128)
    const = lambda shape: rng.integers(-128, 128, shape)  # noqa: E731
    tensors = [
        t8("x", (1, 4, 6, 8), qa), t8("a", (1, 6, 8, 4), qa),
        t8("w4", (4,), q(0.02, 3), data=const(4)),
        t8("b", (1, 6, 8, 4), q(0.05, 1)), t8("c", (1, 6, 8, 4), qh), t8("d", (1, 3, 4, 4), qh),
        t8("e", (1, 6, 8, 4), qh), t8("k", (1, 6, 8, 4), qh), t8("m", (1, 6, 8, 4), q(0.03, -9)),
        t8("s", (), q(0.01, 0), data=const(())), t8("f", (1, 6, 8, 4), q(0.03, 2)),
        t8("v", (1, 1, 1, 4), q(0.02, -1), data=const((1, 1, 1, 4))),
        t8("g", (1, 6, 8, 4), q(0.05, 0)), t8("h", (1, 6, 8, 6), q(0.05, 0)),
        t8("c2", (1, 6, 8, 2), q(0.05, 0), data=const((1, 6, 8, 2))),
        t8("i", (1, 6, 8, 8), q(0.05, 0)), t8("j", (1, 6, 8, 8), qs),
        t8("classes", (1, 6, 8), None, DType.INT64), t8("probs", (1, 6, 8, 8), q(1 / 256, 0),
                                                         DType.UINT8),
        t8("anchors", (1, 3, 4), q(0.1, 0), data=const((1, 3, 4))),
    ]
    ops = [
        Op(OpKind.TRANSPOSE, "nchw", ("x",), ("a",), TransposeAttrs((0, 2, 3, 1))),
        Op(OpKind.MUL, "scale", ("a", "w4"), ("b",), AddAttrs()),
        Op(OpKind.HARD_SWISH, "hswish", ("b",), ("c",), NoAttrs()),
        Op(OpKind.MAX_POOL_2D, "pool", ("c",), ("d",), PoolAttrs(3, 3, 2, 2,
                                                                  Padding(1, 1, 1, 1))),
        Op(OpKind.RESIZE_NEAREST_NEIGHBOR, "up_nn", ("d",), ("e",), ResizeAttrs(6, 8, False, True)),
        Op(OpKind.RESIZE_BILINEAR, "up_bl", ("d",), ("k",), ResizeAttrs(6, 8, True, False)),
        Op(OpKind.MUL, "gate", ("e", "k"), ("m",), AddAttrs()),
        Op(OpKind.SUB, "centre", ("m", "s"), ("f",), AddAttrs()),
        Op(OpKind.ADD, "bias", ("f", "v"), ("g",), AddAttrs()),
        Op(OpKind.PAD, "pad", ("g",), ("h",), PadAttrs(((0, 0), (0, 0), (0, 0), (0, 2)))),
        Op(OpKind.CONCATENATION, "concat", ("h", "c2"), ("i",), ConcatAttrs(3)),
        Op(OpKind.LOGISTIC, "sigmoid", ("i",), ("j",), NoAttrs()),
        Op(OpKind.ARG_MAX, "argmax", ("j",), ("classes",), AxisAttrs(3)),
        Op(OpKind.QUANTIZE, "to_uint8", ("j",), ("probs",), NoAttrs()),
    ]
    return graph("heads", tensors, ops, ("x",), ("classes", "probs", "anchors"))


def _inputs(g, count):
    return [random_inputs(g, seed) for seed in range(count)]


def test_generated_library_states_the_layout_and_the_outputs(tmp_path):
    compiled = compile_graph(heads_model(), "host", kernels="portable")
    write_library(compiled, tmp_path / "lib", compile_it=False)
    header = (tmp_path / "lib" / "mnv2_model.h").read_text()
    assert '#define MNV2_INPUT_LAYOUT "NCHW"' in header and "#define MNV2_INPUT_C 4" in header
    assert "#define MNV2_OUTPUT_COUNT 3" in header and "typedef int64_t mnv2_output_t;" in header
    assert "#define MNV2_OUTPUT_2_BYTES 12" in header and "constant (computed" in header
    model_c = (tmp_path / "lib" / "mnv2_model.c").read_text()
    assert "mnv2_constant_output_2" in model_c and "float" not in model_c


@pytest.mark.parametrize("kernels", ["portable", "cmsis-nn"])
def test_every_family_kernel_as_a_layer_unit_on_the_host(kernels):
    need_toolchain("host")
    cmsis = os.environ.get("CMSIS_NN_PATH", "")
    if kernels == "cmsis-nn" and not cmsis:
        pytest.skip("CMSIS_NN_PATH is not set")
    g = heads_model()
    for scheme in ("auto", "layer"):
        compiled = compile_graph(g, "host", kernels=kernels, cmsis_nn_path=cmsis or None,
                                 scheme=scheme)
        report = verify(compiled, _inputs(g, 3))
        assert report["bit_exact"], (scheme, report["per_input"])


@pytest.mark.qemu
@pytest.mark.parametrize("kernels", ["portable", "cmsis-nn"])
def test_every_family_kernel_as_a_layer_unit_on_cortex_m7(kernels):
    need_toolchain("cortex-m7")
    cmsis = os.environ.get("CMSIS_NN_PATH", "")
    if kernels == "cmsis-nn" and not cmsis:
        pytest.skip("CMSIS_NN_PATH is not set")
    g = heads_model()
    report = verify(compile_graph(g, "cortex-m7", kernels=kernels, cmsis_nn_path=cmsis or None),
                    _inputs(g, 2))
    assert report["bit_exact"] and report["instructions"] > 0, report["per_input"]


def test_float_operators_on_constants_are_folded_and_served_from_flash(tmp_path):
    from mnv2gen import reference
    from mnv2gen.passes import run_passes

    g = decoding_model(on_constants=True)
    passed = run_passes(g)
    assert [op.kind for op in passed.ops] == [OpKind.MEAN]
    x = random_inputs(g, 0)
    assert reference.run(passed, x)[1].tobytes() == reference.run(g, x)[1].tobytes()
    compiled = compile_graph(passed, "host", kernels="portable")
    write_library(compiled, tmp_path / "lib", compile_it=False)
    assert "const float mnv2_constant_output_1" in (tmp_path / "lib" / "mnv2_weights.c").read_text()
    need_toolchain("host")
    assert verify(compiled, _inputs(passed, 2))["bit_exact"]


def test_float_operators_on_run_time_data_are_refused_cleanly(tmp_path, run_cli):
    from mnv2gen.errors import UnsupportedError
    from mnv2gen.frontend.tflite_writer import write_tflite

    g = decoding_model(on_constants=False)
    with pytest.raises(UnsupportedError, match="float32 output computed at run time"):
        compile_graph(g, "host", kernels="portable")
    path = tmp_path / "decode.tflite"
    path.write_bytes(write_tflite(g))
    code, out, err = run_cli("plan", path)
    assert code == 2 and out == "" and "DEQUANTIZE" in err and len(err.splitlines()) == 2


def test_add_of_a_full_size_constant_keeps_the_constant_in_flash():
    from family_builders import binary

    from mnv2gen.planner.plan import plan_model

    need_toolchain("host")
    g = binary(OpKind.ADD, (1, 4, 4, 3), (1, 4, 4, 3), q(0.05, 1), q(0.03, -2), q(0.06, 0))
    plan = plan_model(g, "layer")
    assert "w" not in plan.buffer_of.values()  # the output is not placed "over" the constant
    report = verify(compile_graph(g, "host", kernels="portable", scheme="layer"), _inputs(g, 2))
    assert report["bit_exact"]
