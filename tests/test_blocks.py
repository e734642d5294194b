"""Block finder: the shared models' known architectures are recognised."""

from __future__ import annotations

from collections import Counter

from mnv2gen.blocks import find_blocks
from mnv2gen.loader import load_model


def test_mobilenet_v2_has_17_blocks_10_shortcuts(shared_model):
    blocks = find_blocks(load_model(shared_model("aquapapaya_keras_mobilenet_v2_1.0_224")))
    assert len(blocks) == 17 and all(b.kind == "inverted_residual" for b in blocks)
    assert sum(b.add is not None for b in blocks) == 10
    assert blocks[0].expand is None and blocks[0].expansion == 1.0
    assert [b.stride for b in blocks].count(2) == 4
    assert all(b.expansion == 6.0 for b in blocks[1:])


def test_mobilenet_v1_has_13_separable_pairs(shared_model):
    blocks = find_blocks(load_model(shared_model("tflm_person_detect")))
    assert len(blocks) == 13 and {b.kind for b in blocks} == {"separable"}
    assert all(b.add is None and b.expand is None for b in blocks)


def test_mcunet_blocks_have_mixed_kernels_and_expansions(shared_model):
    blocks = find_blocks(load_model(shared_model("tinyengine_vww")))
    assert len(blocks) == 15
    assert Counter(b.kernel for b in blocks) == Counter({3: 9, 7: 4, 5: 2})
    assert Counter(b.expansion for b in blocks) == Counter({6.0: 5, 3.0: 4, 5.0: 3, 4.0: 2,
                                                            1.0: 1})
    assert sum(b.add is not None for b in blocks) == 8
