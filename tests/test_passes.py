"""Passes: each rewrite is checked structurally and proven exact with the reference."""

from __future__ import annotations

import numpy as np
import pytest
from builders import nchw_pooling_head, pad_then_depthwise
from conftest import model_params

from mnv2gen.inputs import random_inputs
from mnv2gen.ir import OpKind, Padding
from mnv2gen.loader import load_raw
from mnv2gen.passes import run_passes
from mnv2gen.passes.fold_pad import fold_pad
from mnv2gen.passes.sink_transpose import sink_transpose
from mnv2gen.reference import run


def test_fold_pad_moves_padding_into_the_depthwise():
    graph = pad_then_depthwise()
    folded = fold_pad(graph)
    folded.verify()
    assert [op.kind for op in folded.ops] == [OpKind.DEPTHWISE_CONV_2D]
    assert folded.ops[0].inputs[0] == "x"
    assert folded.ops[0].attrs.padding == Padding(0, 1, 0, 1)
    for seed in range(3):
        x = random_inputs(graph, seed)
        assert np.array_equal(run(graph, x)[0], run(folded, x)[0])


def test_fold_pad_keeps_a_pad_with_two_readers():
    graph = pad_then_depthwise()
    # make the padded tensor a graph output as well: folding would lose it
    graph = graph.replace(outputs=("y", "xp"))
    assert [op.kind for op in fold_pad(graph).ops] == [OpKind.PAD, OpKind.DEPTHWISE_CONV_2D]


def test_sink_transpose_turns_nchw_means_into_nhwc_means():
    graph = nchw_pooling_head()
    sunk = sink_transpose(graph)
    sunk.verify()
    assert [op.kind for op in sunk.ops] == [OpKind.MEAN, OpKind.MEAN]
    assert [op.attrs.axes for op in sunk.ops] == [(2,), (1,)]
    for seed in range(5):
        x = random_inputs(graph, seed)
        assert np.array_equal(run(graph, x)[0], run(sunk, x)[0])


@pytest.mark.parametrize("path", model_params())
def test_passes_are_exact_on_shared_models(path):
    raw = load_raw(path)
    passed = run_passes(raw)
    assert not any(op.kind in (OpKind.PAD, OpKind.TRANSPOSE) for op in passed.ops)
    x = random_inputs(raw, 1)
    for a, b in zip(run(raw, x), run(passed, x), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
