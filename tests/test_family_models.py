"""Every file in ../shared/models/family/tflite end to end: the reference equals TFLite Micro
on every operator (LiteRT where TFLM lacks one: tests/test_reference_litert.py), every
command works (inspect, run, plan, estimate), and the generated C equals the reference
(and the planned arena simulation) on the host and, in QEMU, on Cortex-M7.

The checks are written for the kinds of files, not for these files: other real files of
the same kinds run through the same tests. QEMU runs use one input each (the big models
cost a minute); DeepLabV3 at 512x512 needs ~10 MB of arena and verifies on the host only.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from codegen_helpers import need_toolchain
from conftest import SHARED_MODELS

from mnv2gen import reference
from mnv2gen.errors import MnvError
from mnv2gen.frontend.tflite import load_tflite
from mnv2gen.frontend.tflite_writer import write_tflite
from mnv2gen.inputs import random_inputs
from mnv2gen.ir import Op
from mnv2gen.loader import load_model
from mnv2gen.passes import run_passes
from mnv2gen.pipeline import compile_graph
from mnv2gen.planner.simulate import simulate
from mnv2gen.tflm import run_tflm_op_outputs, tflm_available
from mnv2gen.verify import reference_io, verify

FAMILY = SHARED_MODELS / "family" / "tflite"
HOST_ONLY_ARENA_BYTES = 4 << 20  # above this a QEMU run is minutes: host only
TFLM_ARENA_BYTES = 160 << 20     # every tensor preserved for the per-operator comparison


def family_params():
    """Return one pytest param per family .tflite file, or a skip when the folder is absent."""
    files = sorted(FAMILY.glob("*.tflite")) if FAMILY.is_dir() else []
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"family models not found at {FAMILY} (set MNV2GEN_SHARED_MODELS)"))]
    return [pytest.param(p, id=p.stem.split("_")[0] + "_" + p.stem.split("_")[1])
            for p in files]


def _per_op_mismatches(graph, model: bytes, inputs) -> dict[str, int]:
    ours = reference.run_all(graph, inputs)
    theirs = run_tflm_op_outputs(model, inputs, TFLM_ARENA_BYTES)
    bad = {}
    for op in graph.ops:
        a = np.ascontiguousarray(ours[op.outputs[0]])
        b = np.ascontiguousarray(theirs[op.source_index]).reshape(a.shape).astype(a.dtype)
        count = int(np.count_nonzero(a.reshape(-1).view(np.uint8) != b.reshape(-1).view(np.uint8)))
        if count:
            bad[op.name] = count
    return bad


@pytest.mark.skipif(not tflm_available(), reason="tflite-micro is not installed")
@pytest.mark.parametrize("path", family_params())
def test_reference_matches_tflm_on_every_operator(path):
    """The file as it is where TFLM runs it; otherwise the folded model (shape plumbing and
    constant-only operators evaluated at compile time), written back as TFLite."""
    raw = load_tflite(path)
    seeds = (0,) if raw.tensor(raw.inputs[0]).num_elements > 1 << 18 else (0, 1)
    try:
        bad = _per_op_mismatches(raw, path.read_bytes(), random_inputs(raw, seeds[0]))
        graph, model = raw, path.read_bytes()
    except MnvError:  # an operator TFLM lacks (TILE in SSD heads)
        passed = run_passes(raw)
        graph = passed.replace(ops=tuple(Op(o.kind, o.name, o.inputs, o.outputs, o.attrs, i)
                                         for i, o in enumerate(passed.ops)))
        model = write_tflite(graph)
        bad = _per_op_mismatches(graph, model, random_inputs(graph, seeds[0]))
    assert bad == {}
    for seed in seeds[1:]:
        assert _per_op_mismatches(graph, model, random_inputs(graph, seed)) == {}, seed


@pytest.mark.parametrize("path", family_params())
def test_every_command_describes_the_model(path, run_cli, tmp_path):
    code, out, err = run_cli("inspect", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["heads"] and len(report["heads"]) == len(report["outputs"])
    assert report["blocks"] or report["squeeze_excite"]
    code, out, err = run_cli("run", path, "-o", tmp_path / "y.npz")
    assert code == 0, err
    assert len(np.load(tmp_path / "y.npz").files) == len(report["outputs"])
    code, out, err = run_cli("plan", path, "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["lower_bound_bytes"] <= plan["peak_bytes"] <= plan["layer_by_layer_bytes"]
    if plan["tflm_arena_bytes"] is not None:
        assert plan["peak_bytes"] < plan["tflm_arena_bytes"]
    code, out, err = run_cli("estimate", path, "--target", "cortex-m7", "--code-table",
                             "--json", "--quiet")
    assert code == 0, err
    memory = json.loads(out)["configurations"][0]["memory"]["generated"]  # cortex-m7 default
    assert memory["plan_bytes"] == plan["peak_bytes"]


def _inputs(graph, count: int) -> list[list[np.ndarray]]:
    return [random_inputs(graph, 11 + i) for i in range(count)]


@pytest.mark.parametrize("path", family_params())
def test_host_c_equals_simulation_and_reference(path):
    need_toolchain("host")
    graph = load_model(path)
    compiled = compile_graph(graph, "host", kernels="portable")
    big = compiled.plan.peak_bytes > HOST_ONLY_ARENA_BYTES
    inputs = _inputs(graph, 1 if big else 2)
    core_inputs = [[np.frombuffer(reference_io(compiled, x)[0],
                                  compiled.core.tensor(compiled.core.inputs[0]).dtype.np
                                  ).reshape(compiled.core.tensor(compiled.core.inputs[0]).shape)]
                   for x in inputs[:1]]
    simulated = simulate(compiled.plan, core_inputs[0])
    expected = reference_io(compiled, inputs[0])[1]
    assert b"".join(np.ascontiguousarray(a).tobytes() for a in simulated) == expected
    report = verify(compiled, inputs)
    assert report["bit_exact"] and report["mismatched_bytes"] == 0, report["per_input"]


@pytest.mark.qemu
@pytest.mark.parametrize("path", family_params())
def test_cortex_m7_c_equals_reference(path):
    need_toolchain("cortex-m7")
    graph = load_model(path)
    compiled = compile_graph(graph, "cortex-m7", kernels="portable")
    if compiled.plan.peak_bytes > HOST_ONLY_ARENA_BYTES:
        pytest.skip(f"{compiled.plan.peak_bytes:,}-byte arena: verified on the host only")
    report = verify(compiled, _inputs(graph, 1))
    assert report["bit_exact"] and report["instructions"] > 0, report["per_input"]


@pytest.mark.parametrize("path", family_params())
def test_host_cmsis_nn_backend_equals_reference(path):
    cmsis = os.environ.get("CMSIS_NN_PATH", "")
    if not cmsis:
        pytest.skip("CMSIS_NN_PATH is not set: the CMSIS-NN backend tier needs a local "
                    "CMSIS-NN v7 checkout")
    need_toolchain("host")
    graph = load_model(path)
    compiled = compile_graph(graph, "host", kernels="cmsis-nn", cmsis_nn_path=cmsis)
    report = verify(compiled, _inputs(graph, 1))
    assert report["bit_exact"], report["per_input"]
