"""`build --pixel-format`: mnv2_set_input_pixels() equals the reference quantisation of the
preprocessed pixels, byte for byte, on real photos (host C against Python)."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest

from mnv2gen.cli import main
from mnv2gen.codegen.emit import LIBRARY_SOURCES
from mnv2gen.codegen.pixels import (
    PixelInput,
    expand_rgb565,
    lookup_tables,
    pack_rgb565,
    reference_input,
)
from mnv2gen.frontend.calibration import Preprocess, load_image
from mnv2gen.ir import OpKind
from mnv2gen.pipeline import compile_model, write_library
from mnv2gen.reference import KERNELS
from mnv2gen.toolchain import build_elf, missing_tools

SHARED = Path(os.environ.get("MNV2GEN_SHARED_MODELS",
                             Path(__file__).resolve().parents[2] / "shared" / "models"))
PHOTOS = SHARED / "testvectors" / "imagenet50_aquapapaya"
MODELS = SHARED / "tflite"
needs_shared = pytest.mark.skipif(not PHOTOS.is_dir() or not MODELS.is_dir(),
                                  reason=f"shared models and photos not found at {SHARED}")
needs_gcc = pytest.mark.skipif(bool(missing_tools("host")), reason="needs gcc")
MEAN_STD = Preprocess.from_mean_std((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mnv2_model.h"

/* usage: prog STRIDE IN OUT [IN OUT ...]; IN holds MNV2_INPUT_H rows of |STRIDE| bytes;
 * a negative STRIDE means bottom-up rows: the image's top row is the last in memory. */
static uint8_t pixels[MNV2_INPUT_H * (MNV2_PIXEL_ROW_BYTES + 64)];

int main(int argc, char **argv)
{
    int stride = atoi(argv[1]);
    size_t row = (size_t)(stride < 0 ? -stride : stride);
    if (mnv2_set_input_pixels(NULL, stride) != MNV2_STATUS_BAD_ARGUMENT
        || mnv2_set_input_pixels(pixels, MNV2_PIXEL_ROW_BYTES - 1) != MNV2_STATUS_BAD_ARGUMENT)
        return 10;
    for (int i = 2; i + 1 < argc; i += 2) {
        FILE *in = fopen(argv[i], "rb"), *out = fopen(argv[i + 1], "wb");
        if (!in || !out || fread(pixels, 1, row * MNV2_INPUT_H, in) != row * MNV2_INPUT_H)
            return 11;
        const uint8_t *first = stride < 0 ? pixels + row * (MNV2_INPUT_H - 1) : pixels;
        if (mnv2_set_input_pixels(first, stride) != MNV2_STATUS_OK)
            return 12;
        fwrite(mnv2_input(), 1, MNV2_INPUT_BYTES, out);
        fclose(in);
        fclose(out);
    }
    return 0;
}
"""


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


def test_rgb565_widens_by_bit_replication():
    words = np.array([0x0000, 0xFFFF, 0xF800, 0x07E0, 0x001F, 0x8410], np.uint16)
    assert expand_rgb565(words).tolist() == [
        [0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [132, 130, 132]]
    every = np.arange(1 << 16, dtype=np.uint16)
    assert (pack_rgb565(expand_rgb565(every)) == every).all()  # lossless round trip


@needs_shared
def test_tables_are_the_models_quantize_of_every_pixel_value():
    """tinyengine_vww takes float input: its own QUANTIZE operator, run by the reference on
    an image holding every pixel value, gives the table entries."""
    compiled = compile_model(MODELS / "tinyengine_vww.tflite", "host", "portable")
    core, full = compiled.core, compiled.full
    tables = lookup_tables(core, MEAN_STD)
    _, h, w, _ = core.tensor(core.inputs[0]).shape
    image = (np.arange(h * w * 3).reshape(h, w, 3) * 7 % 256).astype(np.uint8)
    quantized = _model_quantize(full, MEAN_STD.apply(image)[None])[0]
    for c in range(3):
        assert (tables[c][image[..., c]] == quantized[..., c]).all()
    assert len(np.unique(image[..., 0])) == 256
    assert tables.min() == -128  # saturates at black


def _model_quantize(full, x: np.ndarray) -> np.ndarray:
    """Return the reference's run of the model's own input QUANTIZE operator on float `x`
    (only that operator: the rest of the network does not matter here)."""
    (op,) = full.consumers(full.inputs[0])
    assert op.kind is OpKind.QUANTIZE
    return KERNELS[OpKind.QUANTIZE](full, op, [x])


def _photos(height: int, width: int, channels: int, count: int = 50) -> list[np.ndarray]:
    files = sorted(PHOTOS.iterdir())[:count]
    assert len(files) == count
    return [load_image(path, height, width, channels) for path in files]


def _device_inputs(compiled, pixels: PixelInput, frames: list[bytes], stride: int,
                   tmp_path: Path) -> list[np.ndarray]:
    """Return the input tensor the generated helper writes for each pixel frame."""
    lib = tmp_path / "lib"
    write_library(compiled, lib, compile_it=False, pixels=pixels)
    (tmp_path / "main.c").write_text(HARNESS)
    sources = [tmp_path / "main.c", *(lib / n for n in (*LIBRARY_SOURCES, "mnv2_ops_portable.c"))]
    program = build_elf("host", sources, [lib], tmp_path / "build")
    args = [str(program), str(stride)]
    for i, frame in enumerate(frames):
        (tmp_path / f"in{i}.bin").write_bytes(frame)
        args += [str(tmp_path / f"in{i}.bin"), str(tmp_path / f"out{i}.bin")]
    import subprocess

    assert subprocess.run(args, timeout=120).returncode == 0
    tensor = compiled.core.tensor(compiled.core.inputs[0])
    return [np.fromfile(tmp_path / f"out{i}.bin", tensor.dtype.np).reshape(tensor.shape)
            for i in range(len(frames))]


def _frames(images: list[np.ndarray], pixel_format: str, pad: int, bottom_up: bool
            ) -> list[bytes]:
    """Return each image as rows of pixel bytes followed by `pad` bytes of junk, the top
    row first (or, bottom_up, last in memory as in a BMP file)."""
    frames = []
    for image in images:
        data = pack_rgb565(image).astype("<u2").view(np.uint8).reshape(
            image.shape[0], -1) if pixel_format == "rgb565" else image.reshape(image.shape[0], -1)
        junk = np.full((image.shape[0], pad), 0xA5, np.uint8)
        rows = np.concatenate([data, junk], axis=1)
        frames.append((rows[::-1] if bottom_up else rows).tobytes())
    return frames


@needs_shared
@needs_gcc
@pytest.mark.parametrize("model, pixel_format, preprocess, stride_sign", [
    # float input: the reference is the model's own QUANTIZE operator on the float image
    ("tinyengine_vww", "rgb888", MEAN_STD, 1),
    ("tinyengine_vww", "rgb565", Preprocess(), -1),
    # int8 input (Edge Impulse: pixel / 255) and uint8 input (QUANTIZE uint8 -> int8 inside)
    ("ei_singtown_mask_mobilenet_v2_0.35_96_rgb_int8", "rgb565", Preprocess((1 / 255,), (0.,)),
     1),
    ("st_nota_mobilenet_v2_0.35_224_flowers_int8", "rgb888", Preprocess(), 1),
    # grayscale person detection, its documented [-1, 1] input
    ("tflm_person_detect_mbv1_0.25_96_int8", "gray8", Preprocess(), -1),
])
def test_pixel_helper_equals_the_reference_on_real_photos(tmp_path, model, pixel_format,
                                                          preprocess, stride_sign):
    compiled = compile_model(MODELS / f"{model}.tflite", "host", "portable")
    core, full = compiled.core, compiled.full
    _, height, width, channels = core.tensor(core.inputs[0]).shape
    images = _photos(height, width, channels)
    pad = 7  # odd row padding: rows start at unaligned addresses
    stride = stride_sign * (width * (2 if pixel_format == "rgb565" else channels) + pad)
    got = _device_inputs(compiled, PixelInput(pixel_format, preprocess),
                         _frames(images, pixel_format, pad, stride < 0), stride, tmp_path)
    for image, device in zip(images, got, strict=True):
        seen = expand_rgb565(pack_rgb565(image)) if pixel_format == "rgb565" else image
        if full.tensor(full.inputs[0]).dtype.value == "float32":
            expected = _model_quantize(full, preprocess.apply(seen)[None])
        else:
            expected = reference_input(core, preprocess, seen)
        assert device.dtype == expected.dtype and (device == expected).all()
    assert len({d.tobytes() for d in got}) == len(got)  # 50 different photos


@needs_shared
def test_wrong_pixel_format_is_a_one_line_error_without_output(tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run("build", MODELS / "ei_singtown_mask_mobilenet_v2_0.35_96_rgb_int8"
                            ".tflite", "--target", "host", "-o", out, "--pixel-format", "gray8")
    assert stdout == ""
    assert code == 2 and not out.exists() and "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("note: ")]
    assert len(lines) == 2 and lines[0].startswith("error: ")
    assert "gives 1 channel(s); the model input has 3" in lines[0]
    assert lines[1] == "hint: use --pixel-format rgb888 or rgb565"
    code, _, err = run("build", MODELS / "tflm_person_detect_mbv1_0.25_96_int8.tflite",
                       "--target", "host", "-o", out, "--pixel-format", "gray8", "--scale",
                       "1,2,3", "--kernels", "portable")
    assert code == 2 and "3 --scale/--mean values for a 1-channel input" in err
    assert not out.exists()


@needs_shared
def test_build_writes_the_helper_and_says_so(tmp_path):
    code, stdout, err = run("build", MODELS / "tflm_person_detect_mbv1_0.25_96_int8.tflite",
                            "--target", "host", "-o", tmp_path / "out", "--pixel-format",
                            "gray8", "--kernels", "portable")
    assert code == 0, err
    assert "pixel input: mnv2_set_input_pixels() takes gray8 pixels, value = pixel * " \
           "[0.00784314] + [-1]" in stdout
    header = (tmp_path / "out" / "mnv2_model.h").read_text()
    assert "int mnv2_set_input_pixels(const void *pixels, int stride_bytes);" in header
    assert "#define MNV2_PIXEL_FORMAT_GRAY8 1" in header


M0_MAIN = r"""
#include <stdio.h>
#include "mnv2_file.h"
#include "mnv2_model.h"

/* one byte of offset: every row, and every RGB565 word, starts at an odd address */
static uint8_t buffer[1 + MNV2_INPUT_H * STRIDE] __attribute__((aligned(4)));

int main(void)
{
    if (mnv2_read_file(PIXELS, buffer + 1, MNV2_INPUT_H * STRIDE) != 0)
        return 3;
    if (mnv2_set_input_pixels(buffer + 1, STRIDE) != MNV2_STATUS_OK)
        return 4;
    const uint8_t *in = (const uint8_t *)mnv2_input();
    for (int i = 0; i < MNV2_INPUT_BYTES; ++i)
        printf("%02x%s", in[i], (i % 32 == 31) ? "\n" : "");
    printf("\n");
    return 0;
}
"""


@needs_shared
@pytest.mark.qemu
@pytest.mark.skipif(bool(missing_tools("cortex-m0")), reason="needs the Arm toolchain and QEMU")
def test_pixel_helper_runs_on_armv6m_from_unaligned_rows(tmp_path):
    """Armv6-M faults on unaligned loads: the helper reads bytes, so odd addresses work."""
    from builders import tiny_mobilenet_v2

    from mnv2gen.codegen.emit import templates_dir
    from mnv2gen.pipeline import compile_graph
    from mnv2gen.toolchain import run_elf

    compiled = compile_graph(tiny_mobilenet_v2(), "cortex-m0", "portable")
    core = compiled.core
    _, height, width, _ = core.tensor(core.inputs[0]).shape
    image = _photos(height, width, 3, count=1)[0]
    stride = 2 * width + 3
    (tmp_path / "pixels.bin").write_bytes(_frames([image], "rgb565", 3, False)[0])
    write_library(compiled, tmp_path / "lib", compile_it=False,
                  pixels=PixelInput("rgb565", Preprocess()))
    (tmp_path / "main.c").write_text(M0_MAIN)
    lib = tmp_path / "lib"
    sources = [tmp_path / "main.c", templates_dir() / "harness" / "mnv2_file.c",
               *(lib / n for n in (*LIBRARY_SOURCES, "mnv2_ops_portable.c"))]
    elf = build_elf("cortex-m0", sources, [lib], tmp_path / "build", defines={
        "STRIDE": stride, "PIXELS": f'"{(tmp_path / "pixels.bin").resolve()}"'})
    result = run_elf("cortex-m0", elf, timeout_s=60, icount=False)
    assert result.exit_code == 0, result.stderr
    got = np.frombuffer(bytes.fromhex("".join(result.stdout.split())), np.int8)
    expected = reference_input(core, Preprocess(), expand_rgb565(pack_rgb565(image)))
    assert (got == expected.reshape(-1)).all()


STREAMED_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mnv2_model.h"

/* usage: prog STRIDE ROWS_PER_CALL IN OUT: feed IN's rows of |STRIDE| bytes in calls of
 * ROWS_PER_CALL rows, write the model output to OUT */
static uint8_t pixels[MNV2_INPUT_H * (MNV2_PIXEL_ROW_BYTES + 64)];

int main(int argc, char **argv)
{
    int stride = atoi(argv[1]), per_call = atoi(argv[2]), left = MNV2_INPUT_H, fed = 0;
    FILE *in = fopen(argv[3], "rb"), *out = fopen(argv[4], "wb");
    if (argc != 5 || !in || !out || fread(pixels, 1, (size_t)stride * MNV2_INPUT_H, in) == 0)
        return 11;
    if (mnv2_feed_pixel_rows(pixels, 1, stride) != MNV2_STATUS_NOT_BEGUN || mnv2_begin() != 0
        || mnv2_feed_pixel_rows(NULL, 1, stride) != MNV2_STATUS_BAD_ARGUMENT)
        return 12;
    while (left > 0) {
        const int n = per_call < left ? per_call : left;
        left = mnv2_feed_pixel_rows(pixels + (size_t)fed * stride, n, stride);
        fed += n;
    }
    if (left != 0)
        return 13;
    fwrite(mnv2_output(), 1, MNV2_OUTPUT_BYTES, out);
    fclose(in);
    fclose(out);
    return 0;
}
"""


@needs_shared
@needs_gcc
def test_streamed_pixel_rows_equal_the_reference(tmp_path):
    """--input-mode streamed with --pixel-format: rows converted straight into the input
    ring, fed 5 at a time, give the reference's output of the converted image."""
    import subprocess

    from mnv2gen.reference import run as reference

    compiled = compile_model(MODELS / "tflm_person_detect_mbv1_0.25_96_int8.tflite", "host",
                             "portable", input_mode="streamed")
    core = compiled.core
    _, height, width, channels = core.tensor(core.inputs[0]).shape
    image = _photos(height, width, channels, count=1)[0]
    pad = 5
    (tmp_path / "in.bin").write_bytes(_frames([image], "gray8", pad, False)[0])
    lib = tmp_path / "lib"
    write_library(compiled, lib, compile_it=False, pixels=PixelInput("gray8", Preprocess()))
    assert "int mnv2_feed_pixel_rows(" in (lib / "mnv2_model.h").read_text()
    (tmp_path / "main.c").write_text(STREAMED_HARNESS)
    sources = [tmp_path / "main.c", *(lib / n for n in (*LIBRARY_SOURCES, "mnv2_ops_portable.c"))]
    program = build_elf("host", sources, [lib], tmp_path / "build")
    done = subprocess.run([str(program), str(width + pad), "5", str(tmp_path / "in.bin"),
                           str(tmp_path / "out.bin")], timeout=120)
    assert done.returncode == 0
    expected = reference(core, [reference_input(core, Preprocess(), image)])[0]
    got = np.fromfile(tmp_path / "out.bin", np.int8).reshape(expected.shape)
    assert (got == expected).all()
