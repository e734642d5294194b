"""`build --pixel-format`: the input helper `mnv2_set_input_pixels()` and its lookup tables.

An image of H x W pixels (the model's input size) in RGB888, GRAY8 or RGB565 becomes the
device input tensor through one 256-entry table per channel, computed here: entry v of
channel c is the reference's quantisation of the preprocessed pixel value,
    q = AffineQuantize(float32(v) * scale[c] + offset[c])   (quant.affine_quantize)
with the tensor's scale, zero point and type (int8, or uint8 for models that take uint8),
exactly as `quantize` and the reference quantise the same preprocessed pixels. RGB565
channels are widened to 8 bits by bit replication, (r5 << 3) | (r5 >> 2),
(g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2), which maps 0 to 0 and the maximum to 255.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnv2gen import quant
from mnv2gen.errors import MnvError, quoted
from mnv2gen.frontend.calibration import Preprocess
from mnv2gen.ir import DType, Graph

#: format -> (channels, bytes per pixel)
PIXEL_FORMATS = {"rgb888": (3, 3), "gray8": (1, 1), "rgb565": (3, 2)}


@dataclass(frozen=True)
class PixelInput:
    """What the pixel helper converts from: the pixel format and the preprocessing."""

    pixel_format: str
    preprocess: Preprocess


def check_pixel_input(graph: Graph, pixels: PixelInput) -> None:
    """Raise MnvError (exit 2) unless the device input of `graph` (the integer core) is an
    int8/uint8 [1, H, W, C] tensor whose channels match the pixel format."""
    if pixels.pixel_format not in PIXEL_FORMATS:
        raise MnvError(f"--pixel-format {quoted(pixels.pixel_format)} is not supported",
                       f"choose {', '.join(PIXEL_FORMATS)}")
    channels, _ = PIXEL_FORMATS[pixels.pixel_format]
    tensor = graph.tensor(graph.inputs[0])
    shape = tensor.shape
    if len(shape) != 4 or shape[0] != 1 or tensor.dtype not in (DType.INT8, DType.UINT8):
        raise MnvError(f"{graph.name}: --pixel-format needs an int8 or uint8 image input "
                       f"[1, H, W, C]; the input is {tensor.dtype.value}{list(shape)}",
                       "write the input with mnv2_input() instead")
    if shape[3] != channels:
        fitting = [f for f, (c, _) in PIXEL_FORMATS.items() if c == shape[3]]
        raise MnvError(f"{graph.name}: --pixel-format {pixels.pixel_format} gives {channels} "
                       f"channel(s); the model input has {shape[3]}",
                       f"use --pixel-format {' or '.join(fitting)}" if fitting else
                       "this input does not come from 1- or 3-channel pixels")
    for what, values in (("--scale/--mean", pixels.preprocess.scale),
                         ("--offset/--std", pixels.preprocess.offset)):
        if len(values) not in (1, channels):
            raise MnvError(f"{len(values)} {what} values for a {channels}-channel input",
                           f"give 1 or {channels} comma-separated values")


def lookup_tables(graph: Graph, preprocess: Preprocess) -> np.ndarray:
    """Return the (channels, 256) tables of the device input's type: entry v of channel c
    is the quantised value of pixel value v in channel c."""
    tensor = graph.tensor(graph.inputs[0])
    channels = tensor.shape[3]
    values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], channels, axis=1)
    real = preprocess.apply(values)  # float32 (256, channels), as calibration applies it
    info = np.iinfo(tensor.dtype.np)
    q = quant.affine_quantize(real, tensor.scale, tensor.zero_point, info.min, info.max)
    return q.astype(tensor.dtype.np).T.copy()


def expand_rgb565(words: np.ndarray) -> np.ndarray:
    """Return uint16 RGB565 words (red in bits 15-11) as uint8 (..., 3) RGB888 by bit
    replication: the widening the generated helper does before its table lookup."""
    words = np.asarray(words, np.uint32)
    r, g, b = (words >> 11) & 0x1F, (words >> 5) & 0x3F, words & 0x1F
    return np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)],
                    axis=-1).astype(np.uint8)


def pack_rgb565(rgb: np.ndarray) -> np.ndarray:
    """Return uint8 (..., 3) RGB888 pixels truncated to uint16 RGB565 words."""
    rgb = np.asarray(rgb, np.uint16)
    return ((rgb[..., 0] >> 3) << 11 | (rgb[..., 1] >> 2) << 5 | rgb[..., 2] >> 3
            ).astype(np.uint16)


def reference_input(graph: Graph, preprocess: Preprocess, pixels: np.ndarray) -> np.ndarray:
    """Return the device input tensor for uint8 (H, W, C) pixels (RGB565 expanded first):
    the reference quantisation of the preprocessed pixels, without any table."""
    tensor = graph.tensor(graph.inputs[0])
    info = np.iinfo(tensor.dtype.np)
    real = preprocess.apply(np.asarray(pixels, np.uint8))
    return quant.affine_quantize(real, tensor.scale, tensor.zero_point, info.min,
                                 info.max).astype(tensor.dtype.np).reshape(tensor.shape)


def pixel_context(graph: Graph, pixels: PixelInput | None) -> dict | None:
    """Return what the model templates need for the helper (None without --pixel-format):
    format, bytes per pixel, the tables as C initialiser rows, the preprocessing."""
    if pixels is None:
        return None
    check_pixel_input(graph, pixels)
    tables = lookup_tables(graph, pixels.preprocess)
    _, bytes_per_pixel = PIXEL_FORMATS[pixels.pixel_format]
    rows = [", ".join(str(int(v)) for v in table[i:i + 16])
            for table in tables for i in range(0, 256, 16)]
    return {"format": pixels.pixel_format, "FORMAT": pixels.pixel_format.upper(),
            "bytes_per_pixel": bytes_per_pixel, "channels": len(tables),
            "table_rows": [rows[c * 16:(c + 1) * 16] for c in range(len(tables))],
            "preprocess": pixels.preprocess.describe()}
