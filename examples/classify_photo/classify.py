"""Classify a photo with the C code mnv2gen generates, run on a Cortex-M in QEMU.

    python examples/classify_photo/classify.py MODEL.tflite PHOTO --labels LABELS.txt
        [--target cortex-m7] [--kernels portable|cmsis-nn] [--scale 1/127.5] [--offset -1]

The photo is loaded with Pillow, resized to the model's input (bilinear, no crop), mapped
to value = pixel * SCALE + OFFSET (default: [-1, 1], as Keras MobileNetV2 expects) and
quantised with the input's scale and zero point. mnv2gen builds the model for the target,
runs the generated code in QEMU on that input (the verify machinery: it also checks the
output bit for bit against the NumPy reference) and this script prints the top-5 classes of
the output the device computed, with the labels (one per line, line i = class i).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

try:
    import numpy as np

    from mnv2gen.errors import MnvError
    from mnv2gen.ir import DType
    from mnv2gen.loader import load_model
    from mnv2gen.pipeline import compile_graph
    from mnv2gen.toolchain import run_elf
    from mnv2gen.verify import parse_run, verify
except ImportError as missing:
    sys.exit(f"error: this Python lacks mnv2gen ({missing}); run the README's first command "
             "and use .venv/bin/python examples/classify_photo/classify.py ...")


def photo_input(path: Path, tensor, scale: float, offset: float) -> np.ndarray:
    """Return the photo as the model's input array (batch 1, NHWC, its dtype)."""
    try:
        from PIL import Image
    except ImportError:
        raise MnvError("reading the photo needs Pillow",
                       ".venv/bin/pip install pillow (or the README's first command, "
                       "which installs mnv2gen[images])") from None
    _, height, width, channels = tensor.shape
    image = Image.open(path).convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
    values = pixels.reshape(1, height, width, channels) * scale + offset
    if tensor.dtype is DType.FLOAT32:
        return values.astype(np.float32)
    info = np.iinfo(tensor.dtype.np)
    q = np.round(values / tensor.scale) + tensor.zero_point
    return np.clip(q, info.min, info.max).astype(tensor.dtype.np)


def device_output(compiled, model_input: np.ndarray) -> tuple[np.ndarray, dict]:
    """Return (the output bytes the generated code computed in QEMU, verify's report)."""
    with tempfile.TemporaryDirectory(prefix="classify-") as scratch:
        work = Path(scratch)
        report = verify(compiled, [[model_input]], work_dir=work)
        # run the verified program once more to read the output it printed
        result = run_elf(compiled.target, work / "build" / "app.elf", timeout_s=600, cwd=work)
        raw = parse_run(result.stdout, 1).outputs[0]
    core_out = compiled.core.tensor(compiled.core.outputs[0])
    return np.frombuffer(raw, dtype=core_out.dtype.np), report


def main() -> int:
    """Classify the photo and print the top-5; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("photo")
    parser.add_argument("--labels", required=True, help="class names, one per line")
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--kernels", default="portable", choices=["portable", "cmsis-nn"])
    parser.add_argument("--cmsis-nn", default=None, help="CMSIS-NN checkout (cmsis-nn)")
    parser.add_argument("--scale", type=float, default=1 / 127.5)
    parser.add_argument("--offset", type=float, default=-1.0)
    args = parser.parse_args()
    try:
        try:
            labels = Path(args.labels).read_text().splitlines()
        except OSError as exc:
            raise MnvError(f"{args.labels}: cannot read the labels ({exc.strerror})") from None
        graph = load_model(args.model)
        compiled = compile_graph(graph, args.target, args.kernels, args.cmsis_nn)
        model_input = photo_input(Path(args.photo), graph.tensor(graph.inputs[0]),
                                  args.scale, args.offset)
        output, report = device_output(compiled, model_input)
    except MnvError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    out_tensor = compiled.core.tensor(compiled.core.outputs[0])
    scores = (output.astype(np.float64) - out_tensor.zero_point) * out_tensor.scale
    verdict = ("bit-exact with the NumPy reference" if report["bit_exact"]
               else f"MISMATCH: {report['mismatched_bytes']} bytes differ from the reference")
    print(f"{Path(args.model).name} on {args.target} ({compiled.kernels} kernels), photo "
          f"{Path(args.photo).name} resized to {model_input.shape[2]}x{model_input.shape[1]}")
    print(f"generated C code run in QEMU: {verdict}; {report['instructions']:,} instructions "
          "(QEMU count, not cycles)")
    print("top-5:")
    for rank, index in enumerate(np.argsort(-scores, kind="stable")[:5], start=1):
        name = labels[index] if index < len(labels) else "?"
        print(f"  {rank}. {name} (class {index}): {scores[index]:.3f}")
    return 0 if report["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
