"""Offline re-layouts for the generated kernels: weights in the order the inner loops read
them, biases with the input offset folded in, and per-channel requantisation tables.

Everything here is exact integer arithmetic on the model's own numbers (quant.py's
multipliers and shifts); templates/runtime/mnv2_gen_kernels.h documents how the C loops
consume each layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnv2gen import quant

FAST, EXACT = "fast", "exact"
MODE_MACRO = {FAST: "MNV2_RQ_FAST", EXACT: "MNV2_RQ_EXACT"}
#: FAST's rounding constant 2^(s-1) + 127 * 2^s must fit int32: right shifts up to 23.
_FAST_MAX_SHIFT = 23


@dataclass(frozen=True)
class Requant:
    """Per-channel requantisation table (mnv2_rq rows) and its mode."""

    mode: str
    table: np.ndarray  # int32 [channels rounded up to 4, 4]: bias, multiplier, round, shift


def max_abs_input(input_offset: int) -> int:
    """Return the largest |x + input_offset| over int8 x."""
    return max(abs(-128 + input_offset), abs(127 + input_offset))


def acc_bound(bias: np.ndarray, abs_weight_sums: np.ndarray, input_offset: int) -> np.ndarray:
    """Return per channel the largest |accumulator| TFLite can form: |bias| plus the sum of
    |w| times the largest |x + input_offset|."""
    return (np.abs(bias.astype(np.int64))
            + abs_weight_sums.astype(np.int64) * max_abs_input(input_offset))


def requant(bias, multipliers, shifts, output_offset: int, bound: np.ndarray) -> Requant:
    """Return the requantisation table of a layer.

    FAST when every channel shifts right by 1..23 bits and its accumulator bound stays
    below 2^30 (so acc * 2 and the rounding sum are exact in int32): then
    round = 2^(s-1) + output_offset * 2^s and shift = s. Otherwise EXACT, which stores
    2^right - 1 (gemmlowp's rounding mask, 0 without a right shift) and TFLite's signed
    shift, and applies the output offset in C.
    """
    bias = quant.wrap32(np.asarray(bias, dtype=np.int64))
    mult = np.asarray(multipliers, dtype=np.int64)
    right = -np.asarray(shifts, dtype=np.int64)
    fast_round = (np.int64(1) << np.maximum(right - 1, 0)) + (np.int64(output_offset)
                                                                << np.clip(right, 0, 40))
    fast = bool(np.all((right >= 1) & (right <= _FAST_MAX_SHIFT) & (bound < (1 << 30))
                       & (bound + np.abs(fast_round) + 1 < (1 << 31))))
    channels = len(mult)
    table = np.zeros((-(-channels // 4) * 4, 4), dtype=np.int64)
    table[:channels, 0] = bias
    table[:channels, 1] = mult
    if fast:
        table[:channels, 2] = fast_round
        table[:channels, 3] = right
    else:
        table[:channels, 2] = (np.int64(1) << np.maximum(right, 0)) - 1
        table[:channels, 3] = -right
    return Requant(FAST if fast else EXACT, table.astype(np.int32))


def folded_bias(bias, weights_2d: np.ndarray, input_offset: int) -> np.ndarray:
    """Return bias + input_offset * sum_k w[o][k], wrapped to int32 as C computes it."""
    b = np.zeros(weights_2d.shape[0], np.int64) if bias is None else np.asarray(bias, np.int64)
    return quant.wrap32(b + input_offset * weights_2d.astype(np.int64).sum(axis=1))


def _words(values: np.ndarray) -> np.ndarray:
    """Return int8 or int16 values (a multiple of 4 bytes) as the little-endian int32 words
    the C loops load."""
    return np.ascontiguousarray(values).view("<i4").astype(np.int32)


def _rows(rq: Requant, channels: int, rows: int) -> np.ndarray:
    """Return rq's first `channels` rows, zero-padded to `rows` rows."""
    table = np.zeros((rows, 4), np.int32)
    table[:channels] = rq.table[:channels]
    return table


def pointwise_weights(weights_2d: np.ndarray) -> np.ndarray:
    """Return int8 [out_c][in_c] weights as int32 words [pairs][2 * blocks]: per pair of
    output channels, per block of 4 input channels, the word of channel o then o + 1
    (zero-padded to whole pairs and whole blocks)."""
    out_c, in_c = weights_2d.shape
    pairs, blocks = -(-out_c // 2), -(-in_c // 4)
    padded = np.zeros((pairs * 2, blocks * 4), np.int8)
    padded[:out_c, :in_c] = weights_2d
    quads = padded.reshape(pairs, 2, blocks, 4).transpose(0, 2, 1, 3)
    return _words(quads.reshape(-1)).reshape(pairs, 2 * blocks)


def pointwise_stream(weights_2d: np.ndarray, rq: Requant | None) -> np.ndarray:
    """Return mnv2_gen_pw.h's stream of a 1x1 convolution: per pair of output channels
    bias[o], bias[o+1], the pair's weight words, then multiplier, round, shift of o and
    of o + 1. With rq None (partial sums) the weight words alone."""
    words = pointwise_weights(weights_2d)
    if rq is None:
        return words.reshape(-1)
    table = _rows(rq, weights_2d.shape[0], 2 * words.shape[0]).reshape(words.shape[0], 2, 4)
    return np.concatenate([table[:, :, 0], words, table[:, :, 1:].reshape(-1, 6)],
                          axis=1).reshape(-1)


def depthwise_stream(weights_hwc: np.ndarray, rq: Requant, input_offset: int) -> np.ndarray:
    """Return mnv2_gen_dw.h's stream of a depthwise [kh][kw][C] layer: per group of 4
    channels the 4 biases, the 4 biases with input_offset * sum(w) folded in, per tap the
    halfword pairs (w[c0], w[c2]), (w[c1], w[c3]), then multiplier, round, shift of the 4
    channels; then per remaining channel bias, folded bias, multiplier, round, shift and
    its taps as int16 (padded to whole words)."""
    kh, kw, channels = weights_hwc.shape
    taps = weights_hwc.reshape(kh * kw, channels).astype(np.int16)
    groups = channels // 4
    table = _rows(rq, channels, channels)
    folded = folded_bias(table[:, 0], taps.T, input_offset).astype(np.int32)
    parts = []
    for g in range(groups):
        c = slice(4 * g, 4 * g + 4)
        pairs = taps[:, c][:, [0, 2, 1, 3]].reshape(-1)
        parts += [table[c, 0], folded[c], _words(pairs), table[c, 1:].reshape(-1)]
    for c in range(4 * groups, channels):
        weights = np.zeros(-(-kh * kw // 2) * 2, np.int16)
        weights[:kh * kw] = taps[:, c]
        parts += [table[c, :1], folded[c:c + 1], table[c, 1:], _words(weights)]
    return np.concatenate(parts).astype(np.int32)


def conv_stream(weights_ohwi: np.ndarray, rq: Requant, input_offset: int) -> np.ndarray:
    """Return mnv2_gen_conv.h's stream of a [out_c][kh][kw][in_c] layer: per tile of 4
    output channels the 4 biases with input_offset * sum(w) folded in, per pair q of patch
    values (tap-major, input channel minor) the 4 channels' halfword pairs (w[2q],
    w[2q+1]), then multiplier, round, shift of the 4 channels (zero-padded to whole tiles
    and pairs)."""
    out_c = weights_ohwi.shape[0]
    patch = weights_ohwi.reshape(out_c, -1).astype(np.int16)
    tiles, pairs = -(-out_c // 4), -(-patch.shape[1] // 2)
    padded = np.zeros((tiles * 4, pairs * 2), np.int16)
    padded[:out_c, :patch.shape[1]] = patch
    words = _words(padded.reshape(tiles, 4, pairs, 2).transpose(0, 2, 1, 3).reshape(-1))
    table = _rows(rq, out_c, tiles * 4)
    table[:, 0] = folded_bias(table[:, 0], padded, input_offset)
    table = table.reshape(tiles, 4, 4)
    return np.concatenate([table[:, :, 0], words.reshape(tiles, 4 * pairs),
                           table[:, :, 1:].reshape(tiles, 12)], axis=1).reshape(-1)


def add_input_table(zero_point: int, multiplier: int, shift: int, left_shift: int) -> np.ndarray:
    """Return int32 [256]: for every int8 value v (indexed by v & 0xff) TFLite ADD's rescaled
    input MultiplyByQuantizedMultiplier((v - zero_point) << left_shift, multiplier, shift)."""
    values = np.arange(256, dtype=np.int64)
    values = np.where(values > 127, values - 256, values)
    return quant.multiply_by_quantized_multiplier((values - zero_point) << left_shift,
                                                  multiplier, shift).astype(np.int32)
