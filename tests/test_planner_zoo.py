"""Planner acceptance on synthesized models of the widths and resolutions users ask about."""

from __future__ import annotations

import numpy as np
import pytest

from mnv2gen.inputs import random_inputs
from mnv2gen.planner.chunking import Chunking
from mnv2gen.planner.plan import plan_model
from mnv2gen.planner.simulate import simulate
from mnv2gen.reference import run
from mnv2gen.zoo import synthesize

CONFIGS = [("mobilenet-v2", 0.35, 96), ("mobilenet-v2", 0.35, 128), ("mobilenet-v2", 0.5, 160),
           ("mobilenet-v2", 1.0, 224), ("mobilenet-v2", 1.4, 224), ("mobilenet-v1", 0.25, 96)]
FORCED = [None, Chunking(1, 1), Chunking(2, 2), Chunking(0, 3), Chunking(1, 6), Chunking(0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("arch, alpha, resolution", CONFIGS,
                         ids=[f"{a}-{w}-{r}" for a, w, r in CONFIGS])
def test_simulation_equals_reference_on_synthesized_models(arch, alpha, resolution):
    graph = synthesize(arch, alpha, resolution, 1000, seed=3)
    inputs = random_inputs(graph, 1)
    expected = run(graph, inputs)
    for forced in FORCED:
        plan = plan_model(graph, forced=forced)
        got = simulate(plan, inputs)
        assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True)), forced
        assert plan.peak_bytes <= 1.10 * plan.lower_bound_bytes


@pytest.mark.parametrize("alpha, resolution, limit", [(1.0, 224, 0.25), (0.35, 96, 0.40)])
def test_bottleneck_plan_is_a_fraction_of_layer_by_layer(alpha, resolution, limit):
    graph = synthesize("mobilenet-v2", alpha, resolution, 1000, seed=0)
    plan, layer = plan_model(graph), plan_model(graph, "layer")
    assert plan.peak_bytes / layer.peak_bytes <= limit
    assert plan.peak_bytes <= 1.10 * plan.lower_bound_bytes


def test_shared_imagenet_model_needs_a_sixth_of_tflite_micro(shared_model):
    from mnv2gen.loader import load_model
    from mnv2gen.tflm import tflm_arena_bytes, tflm_available

    if not tflm_available():
        pytest.skip("tflite-micro is not installed: no TFLM arena to compare with")
    path = shared_model("aquapapaya_keras_mobilenet_v2_1.0_224")
    plan = plan_model(load_model(path))
    assert plan.peak_bytes * 6 <= tflm_arena_bytes(path.read_bytes())


@pytest.mark.parametrize("alpha, resolution, mode, limit", [
    (1.0, 224, "resident", 174_080), (0.35, 96, "streamed", 16_384)])
def test_segment_plans_meet_the_arena_targets(alpha, resolution, mode, limit):
    """Issue 13's arena targets (input and output counted, portable kernels)."""
    graph = synthesize("mobilenet-v2", alpha, resolution, 1000, seed=0)
    plan = plan_model(graph, input_mode=mode)
    assert plan.segments and plan.peak_bytes <= limit
    assert plan.peak_bytes <= 1.10 * plan.lower_bound_bytes


@pytest.mark.parametrize("prefix, limit", [("tflm_person_detect", 20_480),
                                           ("st_nota_mobilenet_v1_0.5_224", 215_000)])
def test_segment_plans_of_shared_mobilenet_v1_meet_the_arena_targets(shared_model, prefix,
                                                                     limit):
    from mnv2gen.loader import load_model

    plan = plan_model(load_model(shared_model(prefix)))
    assert plan.segments and plan.peak_bytes <= limit
