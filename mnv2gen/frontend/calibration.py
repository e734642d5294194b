"""Calibration and evaluation data: image folders, .npy batches or seeded random images.

Images are decoded with Pillow (imported lazily: only this path needs it), converted to
RGB (or L for one-channel models), resized to the model's H x W with bilinear filtering
and mapped to model values by `Preprocess`. A `.npy` file is used as it is: model
values in the ONNX input layout, one sample or a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnv2gen.errors import MnvError
from mnv2gen.frontend.float_model import FloatModel
from mnv2gen.zoo_float import sample_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
RANDOM = "random"
RANDOM_SAMPLES = 8


@dataclass(frozen=True)
class Preprocess:
    """value = pixel * scale + offset per channel, pixel in [0, 255].

    `--scale S --offset O` sets them directly; `--mean M --std S` (torchvision style,
    on pixel / 255) gives scale = 1 / (255 std), offset = -mean / std.
    """

    scale: tuple[float, ...] = (1 / 127.5,)
    offset: tuple[float, ...] = (-1.0,)

    @classmethod
    def from_mean_std(cls, mean: tuple[float, ...], std: tuple[float, ...]) -> Preprocess:
        """Return the Preprocess of (pixel / 255 - mean) / std."""
        if any(s == 0 for s in std):
            raise MnvError(f"--std {std} contains 0")
        mean, std = np.broadcast_arrays(np.asarray(mean, float), np.asarray(std, float))
        return cls(tuple(float(v) for v in 1 / (255 * std)), tuple(float(v) for v in -mean / std))

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Return float32 model values of uint8 pixels (..., channels)."""
        channels = pixels.shape[-1]
        for what, v in (("scale", self.scale), ("offset", self.offset)):
            if len(v) not in (1, channels):
                raise MnvError(f"{len(v)} {what} values for a {channels}-channel input")
        return (pixels.astype(np.float32) * np.float32(self.scale)
                + np.float32(self.offset)).astype(np.float32)

    def describe(self) -> str:
        """Return 'pixel * S + O' for reports."""
        fmt = ", ".join
        return (f"pixel * [{fmt(f'{s:.6g}' for s in self.scale)}] + "
                f"[{fmt(f'{o:.6g}' for o in self.offset)}]")


@dataclass(frozen=True)
class Samples:
    """Model inputs (N, H, W, C) float32 in the float form's layout, and their origin."""

    data: np.ndarray
    source: str
    names: tuple[str, ...]


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image(path: Path, height: int, width: int, channels: int) -> np.ndarray:
    """Return the image at `path` as uint8 (height, width, channels), resized bilinearly."""
    try:
        from PIL import Image
    except ImportError:
        raise MnvError("reading images needs Pillow", "pip install pillow, or pass a "
                       ".npy batch") from None
    if channels not in (1, 3):
        raise MnvError(f"the model input has {channels} channels; images give 1 or 3",
                       "pass a .npy batch instead")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if channels == 3 else "L")
            img = img.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise MnvError(f"{path}: cannot read the image ({exc})") from None
    return array.reshape(height, width, channels)


def _from_npy(path: Path, model: FloatModel) -> np.ndarray:
    from mnv2gen.inputs import load_npy

    array = load_npy(path)
    want = model.onnx_input_shape
    if array.shape == tuple(want[1:]):
        array = array[None]
    if array.ndim != len(want) or tuple(array.shape[1:]) != tuple(want[1:]) or not len(array):
        raise MnvError(f"{path}: array of shape {array.shape} does not fit the model input "
                       f"{want} (one sample or a batch N x {' x '.join(map(str, want[1:]))})",
                       "a .npy holds model values in the ONNX input layout")
    if not np.issubdtype(array.dtype, np.number):
        raise MnvError(f"{path}: array dtype {array.dtype} is not numeric")
    return model.to_nhwc(array.astype(np.float32))


def _random(model: FloatModel, seed: int) -> np.ndarray:
    shape = model.input_shape
    if len(shape) != 4:
        rng = np.random.default_rng(seed)
        return rng.uniform(-1, 1, (RANDOM_SAMPLES, *shape[1:])).astype(np.float32)
    _, h, w, c = shape
    images = sample_images(RANDOM_SAMPLES, max(h, w), c, seed)
    return np.ascontiguousarray(images[:, :h, :w, :])


def load_samples(source: str, model: FloatModel, preprocess: Preprocess,
                 seed: int = 0) -> Samples:
    """Return the samples named by `source`: a folder of images, a .npy file or 'random'.

    'random' gives smooth random images in [-1, 1]: only good for size and speed
    estimates, never for accuracy.
    """
    if source == RANDOM:
        return Samples(_random(model, seed), "random images (estimation only)", ())
    path = Path(source)
    if not path.exists():
        raise MnvError(f"{source}: no such file or directory",
                       "give a folder of images, a .npy batch, or 'random'")
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise MnvError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        if len(model.input_shape) != 4:
            raise MnvError(f"{source}: images need a 4-D model input, this one is "
                           f"{model.onnx_input_shape}", "pass a .npy batch")
        _, h, w, c = model.input_shape
        pixels = np.stack([load_image(p, h, w, c) for p in files])
        return Samples(preprocess.apply(pixels), f"{len(files)} images in {source} "
                       f"({preprocess.describe()})", tuple(p.name for p in files))
    if path.suffix.lower() != ".npy":
        raise MnvError(f"{source}: expected a folder of images, a .npy file or 'random'")
    data = _from_npy(path, model)
    return Samples(data, f"{len(data)} samples from {source}", ())
