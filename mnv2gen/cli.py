"""The `mnv2gen` command line: parses options, calls the library, maps errors to exits.

Exit status: 0 success, 1 verification mismatch, 2 usage or input error, 3 internal error.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import sys
import warnings

import click
import numpy as np

from mnv2gen import __version__
from mnv2gen.errors import (
    MnvError,
    ModelError,
    UnsupportedError,
    VerificationError,
    file_label,
    one_line,
    quoted,
    shown,
)
from mnv2gen.fsutil import write_file

SEED = click.IntRange(0, 2**32 - 1)
MAX_VERIFY_INPUTS = 1000
MAX_RAM_BUDGET = 1 << 40
MESSAGE_LINE_LIMIT = 1000


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnv2gen")
def cli() -> None:
    """Compile int8 MobileNetV2-family models into bare-metal C for Cortex-M."""


def _print_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2))


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect(model: str, as_json: bool) -> None:
    """Show a model's inputs, outputs, operators, MACs, tensor bytes and blocks."""
    from mnv2gen.loader import load_model
    from mnv2gen.summary import render_summary, summarize

    report = summarize(load_model(model))
    _print_json(report) if as_json else click.echo(render_summary(report))


def _describe_output(name: str, array: np.ndarray) -> str:
    flat = array.reshape(-1)
    head = ", ".join(str(v) for v in flat[:10]) + (", ..." if flat.size > 10 else "")
    line = f"{shown(name)}: {array.dtype}{list(array.shape)} [{head}]"
    if array.ndim == 2 and array.shape[0] == 1 and array.shape[1] > 1:
        top = np.argsort(-flat.astype(np.float64), kind="stable")[:5]
        line += "\n  top-5 class indices: " + ", ".join(f"{i} ({flat[i]})" for i in top)
    return line


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Input as .npy with the model's input shape and dtype (default: random).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random input.")
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False),
              help="Write the output array here as .npy (the model's output dtype), or every "
                   "output as .npz.")
@click.option("--check-tflm", is_flag=True,
              help="Also run the TFLite Micro interpreter and compare bit for bit (exit 1 "
                   "on any difference; needs the tflm extra).")
@click.option("--force", is_flag=True,
              help="Replace an existing -o file that is not an output of this model.")
def run(model: str, input_path: str | None, seed: int, output_path: str | None,
        check_tflm: bool, force: bool) -> None:
    """Run the bit-exact NumPy int8 reference on one input."""
    from mnv2gen.frontend.validate import check_reference_work
    from mnv2gen.fsutil import npy_like, npz_with, require_path
    from mnv2gen.inputs import load_input, random_inputs
    from mnv2gen.loader import load_raw, tflite_bytes
    from mnv2gen.passes import run_passes
    from mnv2gen.reference import run as run_reference

    if output_path is not None:
        require_path(output_path, "-o")
    graph_raw = load_raw(model)
    graph = run_passes(graph_raw)
    check_reference_work(graph, file_label(model))
    inputs = load_input(graph, input_path) if input_path else random_inputs(graph, seed)
    outputs = run_reference(graph, inputs)
    source = shown(input_path) if input_path else f"random input (seed {seed})"
    click.echo(f"{shown(graph.name)}: reference run on {source}")
    for name, array in zip(graph.outputs, outputs, strict=True):
        click.echo(_describe_output(name, array))
    if check_tflm:
        from mnv2gen.tflm import compare_outputs
        from mnv2gen.tflm_isolated import run_outputs

        theirs = run_outputs(tflite_bytes(model, graph_raw), inputs)
        if theirs.value is None:
            click.echo(f"TFLite Micro: not compared ({theirs.reason})")
        else:
            verdict = compare_outputs(outputs, theirs.value)
            click.echo(verdict.describe())
            if not verdict.bit_exact:
                raise VerificationError(f"{file_label(model)}: reference and TFLite Micro "
                                        f"differ in {verdict.mismatched_bytes} bytes")
    if output_path:
        buf = io.BytesIO()
        if output_path.lower().endswith(".npz"):
            np.savez(buf, **{f"output_{i}": a for i, a in enumerate(outputs)})
            ours = npz_with([f"output_{i}" for i in range(len(outputs))])
        elif len(outputs) != 1:
            raise MnvError(f"the model has {len(outputs)} outputs; a .npy file holds one",
                           "give -o a .npz path to write them all (output_0, output_1, ...)")
        else:
            np.save(buf, outputs[0], allow_pickle=False)
            ours = npy_like(outputs[0].shape, outputs[0].dtype)
        write_file(output_path, buf.getvalue(), force=force, ours=ours)
        click.echo(f"wrote {shown(output_path)}")


@cli.command()
@click.argument("arch", type=click.Choice(["mobilenet-v2", "mobilenet-v1"]))
@click.option("--alpha", type=float, default=1.0, show_default=True, help="Width multiplier.")
@click.option("--resolution", type=int, default=224, show_default=True,
              help="Input height and width.")
@click.option("--classes", type=int, default=1000, show_default=True, help="Output classes.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the weights.")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the .tflite file.")
@click.option("--force", is_flag=True, help="Replace an existing file mnv2gen did not write.")
def zoo(arch: str, alpha: float, resolution: int, classes: int, seed: int,
        output_path: str, force: bool) -> None:
    """Synthesize an int8 MobileNet .tflite with random weights and realistic quantisation."""
    from mnv2gen.fsutil import require_path, tflite_by_mnv2gen
    from mnv2gen.zoo import synthesize_tflite

    require_path(output_path, "-o")
    data = synthesize_tflite(arch, alpha, resolution, classes, seed)
    write_file(output_path, data, force=force, ours=tflite_by_mnv2gen)
    click.echo(f"wrote {shown(output_path)}: {arch} alpha={alpha} resolution={resolution} "
               f"classes={classes} seed={seed} ({len(data):,} bytes)")


def _input_mode_option(func):
    """Attach --input-mode (plan, build, verify, estimate)."""
    return click.option(
        "--input-mode", type=click.Choice(["resident", "streamed"]), default="resident",
        show_default=True,
        help="resident = the whole input image lives in the arena; streamed = rows are "
             "handed over with mnv2_feed_rows and only a ring of them is kept.")(func)


def _calibration_options(func):
    """Attach the options that quantise a float ONNX model on the fly (as `quantize`)."""
    options = [
        click.option("--calibrate", "calibrate_with",
                     help="Float ONNX only: calibration images (folder), x.npy, or 'random' "
                          "(estimates only)."),
        click.option("--scale", help="Float ONNX (with --calibrate) and build --pixel-format: "
                                     "input = pixel * scale + offset."),
        click.option("--offset", help="See --scale."),
        click.option("--mean", help="As --scale: per-channel mean (with --std), 0..255."),
        click.option("--std", help="As --scale: per-channel std (with --mean), 0..255."),
        click.option("--percentile", type=float, help="Float ONNX: percentile calibration."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _calibration(calibrate_with, scale, offset, mean, std, percentile):
    """Return the loader's Calibration from the options, or None when none was given."""
    from mnv2gen.loader import Calibration

    if calibrate_with is None:
        if any(v is not None for v in (scale, offset, mean, std, percentile)):
            raise MnvError("--scale/--offset/--mean/--std/--percentile need --calibrate")
        return None
    preprocess = _preprocess(*(_floats(f"--{n}", v) for n, v in
                               (("scale", scale), ("offset", offset), ("mean", mean),
                                ("std", std))))
    return Calibration(calibrate_with, preprocess, percentile)


def _parse_bytes(value: str | None) -> int | None:
    """Return a byte count from '131072', '128k' or '1.5M' (k and M are 1024-based)."""
    if value is None:
        return None
    text = value.strip().lower().removesuffix("b")
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    try:
        number = float(text[:-1] if scale > 1 else text)
    except ValueError:
        raise MnvError(f"--ram-budget {quoted(value)} is not a byte count",
                       "give bytes, e.g. 131072, 128k or 1.5M") from None
    if not math.isfinite(number) or not 1 <= number * scale <= MAX_RAM_BUDGET:
        raise MnvError(f"--ram-budget {quoted(value)} is not a byte count from 1 to "
                       f"{MAX_RAM_BUDGET:,}", "give bytes, e.g. 131072, 128k or 1.5M")
    return int(number * scale)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--scheme", type=click.Choice(["layer", "bottleneck", "auto"]), default="auto",
              show_default=True, help="layer = every tensor materialised (the baseline); "
              "bottleneck = only block inputs/outputs resident, expansions chunked, one unit "
              "per step; auto = also chains of units run depth-first row by row.")
@click.option("--ram-budget", help="Pick the cheapest plan that fits this many bytes "
              "(e.g. 131072, 128k).")
@click.option("--kernel-set", type=click.Choice(["generated", "portable", "cmsis-c",
                                                  "cmsis-dsp", "cmsis-mve"]),
              default="generated", show_default=True,
              help="Kernel set to plan for: its scratch rules and instruction costs.")
@click.option("--tflm/--no-tflm", "ask_tflm", default=True, show_default=True,
              help="Also ask TFLite Micro (the tflm extra, in a child process) for its arena "
                   "of the same model.")
@_input_mode_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_calibration_options
def plan(model: str, scheme: str, ram_budget: str | None, kernel_set: str, ask_tflm: bool,
         input_mode: str,
         as_json: bool, calibrate_with, scale, offset, mean, std, percentile) -> None:
    """Plan the static arena: peak bytes, the layer-by-layer baseline and an arena map."""
    from mnv2gen.loader import checked, load_raw, tflite_bytes
    from mnv2gen.passes import run_passes
    from mnv2gen.passes.integer_core import integer_core
    from mnv2gen.planner.plan import plan_model
    from mnv2gen.planner.report import plan_report, render_plan
    from mnv2gen.tflm_isolated import TflmOutcome, arena_bytes

    calibration = _calibration(calibrate_with, scale, offset, mean, std, percentile)
    raw = load_raw(model, calibration)
    core = integer_core(checked(run_passes(raw)))
    chosen = plan_model(core, scheme, kernel_set, _parse_bytes(ram_budget),
                        input_mode=input_mode)
    baseline = plan_model(core, "layer", kernel_set)
    tflm = (arena_bytes(tflite_bytes(model, raw), baseline.peak_bytes) if ask_tflm
            else TflmOutcome(None, "not asked (--no-tflm)"))
    report = plan_report(chosen, baseline, tflm.value, tflm.reason)
    _print_json(report) if as_json else click.echo(render_plan(report, chosen))


def _floats(option: str, value: str | None) -> tuple[float, ...] | None:
    """Return '0.5' or '0.485,0.456,0.406' as a tuple of floats (None stays None)."""
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value.split(","))
    except ValueError:
        numbers = ()
    if not numbers or not all(math.isfinite(v) for v in numbers):
        raise MnvError(f"{option} {quoted(value)} is not a finite number or comma-separated "
                       "finite numbers", f"e.g. {option} 0.5 or {option} 0.485,0.456,0.406")
    return numbers


def _preprocess(scale, offset, mean, std):
    """Return the image Preprocess of the --scale/--offset or --mean/--std options."""
    from mnv2gen.frontend.calibration import Preprocess

    if (scale or offset) and (mean or std):
        raise MnvError("give either --scale/--offset or --mean/--std, not both")
    if mean or std:
        if not (mean and std):
            raise MnvError("--mean and --std go together")
        return Preprocess.from_mean_std(mean, std)
    default = Preprocess()
    return Preprocess(scale or default.scale, offset or default.offset)


def _quant_dict(tensor) -> dict:
    return {"name": tensor.name, "shape": list(tensor.shape),
            "scale": tensor.quant.scale[0], "zero_point": tensor.quant.zero_point[0]}


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calibrate", "calibrate_with", metavar="DIR|x.npy|random",
              help="Calibration data: a folder of images, a .npy batch in the model's input "
                   "layout, or 'random' (estimation only: accuracy is meaningless).")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the int8 .tflite file.")
@click.option("--eval", "eval_with", metavar="DIR|x.npy",
              help="Measure float-vs-int8 agreement on this set (default: the calibration set).")
@click.option("--scale", help="Image preprocessing: value = pixel * SCALE + OFFSET (per "
              "channel with commas) [default: 1/127.5, i.e. [-1, 1]].")
@click.option("--offset", help="See --scale [default: -1].")
@click.option("--mean", help="Image preprocessing: value = (pixel/255 - MEAN) / STD, per "
              "channel with commas (torchvision style).")
@click.option("--std", help="See --mean.")
@click.option("--percentile", type=float,
              help="Calibrate activation ranges on the [100-P, P] percentiles instead of "
                   "min/max (e.g. 99.99).")
@click.option("--input-shape", help="Fix symbolic input dimensions, e.g. 1,3,224,224.")
@click.option("--float-runner", type=click.Choice(["auto", "onnxruntime", "numpy"]),
              default="auto", show_default=True,
              help="Run the float model in onnxruntime (auto: when installed) or NumPy.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of --calibrate random.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--force", is_flag=True, help="Replace an existing file mnv2gen did not write.")
def quantize(model: str, calibrate_with: str | None, output_path: str, eval_with: str | None,
             scale: str | None, offset: str | None, mean: str | None, std: str | None,
             percentile: float | None, input_shape: str | None, float_runner: str, seed: int,
             as_json: bool, force: bool) -> None:
    """Quantise a float ONNX model to an int8 .tflite by post-training quantisation."""
    from mnv2gen.frontend.agreement import agreement
    from mnv2gen.frontend.calibration import load_samples
    from mnv2gen.frontend.ptq import quantize_onnx
    from mnv2gen.frontend.tflite_writer import write_tflite
    from mnv2gen.fsutil import require_path, tflite_by_mnv2gen

    require_path(output_path, "-o")
    preprocess = _preprocess(*(_floats(f"--{n}", v) for n, v in
                               (("scale", scale), ("offset", offset), ("mean", mean),
                                ("std", std))))
    shape = _floats("--input-shape", input_shape)
    if shape and any(d != int(d) or d < 1 for d in shape):
        raise MnvError(f"--input-shape {quoted(input_shape)} needs positive integers")
    if float_runner == "onnxruntime":
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            raise MnvError("--float-runner onnxruntime: onnxruntime is not installed",
                           "pip install onnxruntime, or use --float-runner numpy")
    from mnv2gen.loader import guarded

    result = guarded(file_label(model), quantize_onnx, model, calibrate_with, preprocess,
                     percentile, tuple(int(d) for d in shape) if shape else None, seed)
    evaluation = (load_samples(eval_with, result.model, preprocess) if eval_with
                  else result.calibration)
    data = write_tflite(result.graph)
    write_file(output_path, data, force=force, ours=tflite_by_mnv2gen)
    match = agreement(model, result.model, result.graph, evaluation.data,
                      use_onnxruntime=float_runner != "numpy")
    graph = result.graph
    quantized_input = graph.tensor(graph.ops[0].outputs[0])
    quantized_output = graph.tensor(graph.ops[-1].inputs[0])
    report = {
        "model": model, "output": output_path, "tflite_bytes": len(data),
        "operators": len(graph.ops), "calibration": result.calibration.source,
        "calibration_samples": len(result.calibration.data), "method": result.method,
        "evaluation": evaluation.source if eval_with else "the calibration set",
        "input": _quant_dict(quantized_input), "output_quantization":
            _quant_dict(quantized_output), "fully_connected_weights": "per-tensor",
        **match.as_dict()}
    if as_json:
        _print_json(report)
        return
    random_note = ("\nnote: calibrated on random images, for size/speed estimates only"
                   if calibrate_with == "random" else "")
    click.echo(
        f"wrote {shown(output_path)} ({len(data):,} bytes, {len(graph.ops)} operators)\n"
        f"calibration: {result.calibration.source}, {result.method}\n"
        f"input: float32 -> int8 scale {quantized_input.scale:.6g} zero point "
        f"{quantized_input.zero_point}; output: int8 scale {quantized_output.scale:.6g} "
        f"zero point {quantized_output.zero_point} -> float32\n"
        f"float vs int8 on {report['evaluation']} ({match.samples} samples, float model in "
        f"{match.float_runner}): top-1 agreement {match.top1_matches}/{match.samples} "
        f"({100 * match.top1_agreement:.1f} %), mean abs error {match.mean_abs_error:.5g} "
        f"(max {match.max_abs_error:.5g}){random_note}")


def _compile_options(func):
    """Attach the options build and verify share."""
    options = [
        click.option("--target", "target", required=True,
                     help="cortex-m0, cortex-m3, cortex-m33, cortex-m4, cortex-m7, cortex-m55, "
                          "stm32f405 or host."),
        click.option("--kernels", type=click.Choice(["generated", "cmsis-nn", "portable"]),
                     help="Kernel backend (default: generated, mnv2gen's own kernels "
                          "specialised per layer; on cortex-m55 cmsis-nn when a CMSIS-NN "
                          "path is known)."),
        click.option("--cmsis-nn", "cmsis_nn", type=click.Path(file_okay=False),
                     help="Your CMSIS-NN v7 checkout (default: $CMSIS_NN_PATH)."),
        click.option("--scheme", type=click.Choice(["layer", "bottleneck", "auto"]),
                     default="auto", show_default=True, help="Memory scheme (see `plan`)."),
        click.option("--ram-budget", help="Cheapest plan that fits this many bytes."),
    ]
    for option in reversed(options):
        func = option(func)
    return _calibration_options(_input_mode_option(func))


def _library_options(func):
    """Attach --prefix, --arena, --weights-section and --arena-section (build, verify); the
    command receives them as one validated LibraryOptions, `library`."""
    @functools.wraps(func)
    def command(*args, prefix, arena, weights_section, arena_section, **kwargs):
        from mnv2gen.codegen.options import LibraryOptions

        library = LibraryOptions(prefix, arena, weights_section, arena_section)
        return func(*args, library=library, **kwargs)
    options = [
        click.option("--prefix", default="mnv2", show_default=True,
                     help="NAME: every symbol starts with NAME_, every macro with NAME_ in "
                          "capitals, every file with NAME_ (lowercase letters, digits, _)."),
        click.option("--arena", type=click.Choice(["static", "external", "runtime"]),
                     default="static", show_default=True,
                     help="Who owns the arena: a static array, the application's NAME_arena "
                          "(link time), or a buffer given to NAME_set_arena() at run time."),
        click.option("--weights-section", metavar="SECTION",
                     help="Section of the const weights [default: .rodata.NAME_weights]."),
        click.option("--arena-section", metavar="SECTION",
                     help="Section of the static arena [default: .bss.NAME_arena]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _compile(model, target, kernels, cmsis_nn, scheme, ram_budget, calibrate_with=None,
             scale=None, offset=None, mean=None, std=None, percentile=None,
             input_mode="resident"):
    from mnv2gen.pipeline import compile_model

    calibration = _calibration(calibrate_with, scale, offset, mean, std, percentile)
    compiled = compile_model(model, target, kernels, cmsis_nn, scheme, _parse_bytes(ram_budget),
                             calibration, input_mode)
    if compiled.notice:
        click.echo(compiled.notice, err=True)
    return compiled


def _pixel_input(pixel_format: str | None, calibration: dict):
    """Return the PixelInput of --pixel-format with the --scale/--offset or --mean/--std
    preprocessing (None without --pixel-format). Without --calibrate those options serve
    the pixel helper only, so they are taken out of `calibration`."""
    if pixel_format is None:
        return None
    from mnv2gen.codegen.pixels import PixelInput

    names = ("scale", "offset", "mean", "std")
    preprocess = _preprocess(*(_floats(f"--{n}", calibration[n]) for n in names))
    if calibration.get("calibrate_with") is None:
        calibration.update(dict.fromkeys(names))
    return PixelInput(pixel_format, preprocess)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@_compile_options
@_library_options
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(),
              help="Folder to write (created if missing; an earlier output is replaced "
                   "atomically, nothing mnv2gen did not write is touched).")
@click.option("--force", is_flag=True,
              help="Write into a folder that holds files mnv2gen did not write (files of "
                   "the generated names are replaced, nothing else is touched).")
@click.option("--pixel-format", type=click.Choice(["rgb888", "gray8", "rgb565"]),
              help="Also generate mnv2_set_input_pixels() for images in this format, with "
                   "the --scale/--offset or --mean/--std preprocessing [default: pixel / "
                   "127.5 - 1] (an exact 256-entry table per channel).")
def build(model, target, kernels, cmsis_nn, scheme, ram_budget, out_dir, force, pixel_format,
          library, **calibration) -> None:
    """Generate the model as a C library for a target (and compile it to check)."""
    from mnv2gen.outdir import check_output_directory
    from mnv2gen.pipeline import write_library

    check_output_directory(out_dir, force=force)
    pixels = _pixel_input(pixel_format, calibration)
    compiled = _compile(model, target, kernels, cmsis_nn, scheme, ram_budget, **calibration)
    generated = write_library(compiled, out_dir, pixels=pixels, force=force, options=library)
    plan = compiled.plan
    click.echo(f"wrote {shown(out_dir)}: {len(generated.files)} files for "
               f"{compiled.target.name}, "
               f"{compiled.kernels} kernels")
    click.echo(f"arena {plan.peak_bytes:,} bytes (layer by layer {compiled.baseline.peak_bytes:,}"
               f"), constant data {generated.const_bytes:,} bytes")
    if pixels is not None:
        helper = "feed_pixel_rows" if plan.input_mode == "streamed" else "set_input_pixels"
        click.echo(f"pixel input: {library.prefix}_{helper}() takes {pixels.pixel_format} "
                   f"pixels, value = {pixels.preprocess.describe()}")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@_compile_options
@_library_options
@click.option("--inputs", "count", type=click.IntRange(1, MAX_VERIFY_INPUTS), default=3,
              show_default=True,
              help="Number of inputs to compare (random ones fill up after --input files).")
@click.option("--input", "input_paths", multiple=True, type=click.Path(dir_okay=False),
              help="An input .npy for the model (repeatable).")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the random inputs.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1.0, 7 * 24 * 3600.0),
              help="Seconds the program may run (default: from the instruction estimate, "
                   "at most 1 hour).")
@click.option("--keep", type=click.Path(file_okay=False),
              help="Keep the build folder here for inspection (the folder rules of build -o).")
@click.option("--force", is_flag=True,
              help="Let --keep write into a folder holding files mnv2gen did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(model, target, kernels, cmsis_nn, scheme, ram_budget, count, input_paths, seed,
           timeout_s, keep, force, as_json, library, **calibration) -> None:
    """Build, run on the target (QEMU or host) and compare with the reference bit for bit."""
    from pathlib import Path

    from mnv2gen.frontend.validate import check_reference_work
    from mnv2gen.inputs import load_input
    from mnv2gen.outdir import check_output_directory, output_directory
    from mnv2gen.verify import verification_inputs
    from mnv2gen.verify import verify as run_verify

    if keep is not None:
        check_output_directory(keep, option="--keep", force=force)
    compiled = _compile(model, target, kernels, cmsis_nn, scheme, ram_budget, **calibration)
    check_reference_work(compiled.full, file_label(model))
    given = [load_input(compiled.full, p) for p in input_paths]
    inputs = verification_inputs(compiled, count, seed, given)
    if keep is not None:
        with output_directory(keep, option="--keep", force=force, keep_on_error=True) as work:
            report = run_verify(compiled, inputs, Path(work), timeout_s, options=library)
    else:
        report = run_verify(compiled, inputs, None, timeout_s, options=library)
    if as_json:
        _print_json(report)
    else:
        verdict = "bit-exact" if report["bit_exact"] else "MISMATCH"
        runs = len(report["per_input"])
        how = (f" fed {'/'.join(map(str, report['rows_per_call']))} rows per call"
               if report["rows_per_call"] else "")
        click.echo(f"{shown(report['model'])} on {report['target']} "
                   f"({report['kernels']} kernels): "
                   f"{verdict}, {report['mismatched_bytes']} of "
                   f"{runs * report['output_bytes']} output bytes differ over "
                   f"{report['inputs']} input(s){how}")
        click.echo(f"arena {report['peak_bytes']:,} bytes (layer by layer "
                   f"{report['layer_by_layer_bytes']:,}), constant data "
                   f"{report['const_bytes']:,} bytes")
        if report["instructions"] is not None:
            click.echo(f"instructions per inference: {report['instructions']:,} "
                       "(QEMU instruction count, not cycles)")
    if not report["bit_exact"]:
        raise VerificationError(f"{file_label(model)}: generated code differs from the "
                                "reference")


# ---------------------------------------------------------------- estimate (mnv2gen.estimate)

@cli.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@click.option("--arch", help="Model-free: mobilenet-v2 or mobilenet-v1 (instead of MODEL).")
@click.option("--alpha", help="Width multiplier(s); a comma list sweeps, e.g. 0.35,0.5,1.0 "
              "[default: 1.0].")
@click.option("--resolution", help="Input size(s), e.g. 96,128,160,224 [default: 224].")
@click.option("--classes", help="Output classes, e.g. 1000 or 2,1000 [default: 1000].")
@click.option("--target", "targets", multiple=True,
              help="Target(s), repeatable or a comma list [default: the Cortex-M targets].")
@click.option("--kernels", default=None,
              help="generated, portable or cmsis-nn: the kernel set decides scratch, code "
                   "and speed [default: generated on the targets with a generated "
                   "calibration, else portable].")
@click.option("--cmsis-nn", "cmsis_nn", type=click.Path(file_okay=False),
              help="Your CMSIS-NN v7 checkout, to measure cmsis-nn code size and with "
                   "--measure (default: $CMSIS_NN_PATH).")
@click.option("--measure", is_flag=True,
              help="Also build and run in QEMU: measured instruction counts (slow).")
@click.option("--ram-allowance", default="8k", show_default=True,
              help="RAM kept for stack and application when checking parts.")
@click.option("--code-table", is_flag=True,
              help="Take code bytes from the shipped table instead of building (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write a self-contained HTML report with charts.")
@click.option("--png", "png_dir", type=click.Path(file_okay=False),
              help="Write the charts as PNG files into this folder (needs matplotlib).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--force", is_flag=True,
              help="Let --html/--png replace files or fill folders mnv2gen did not write.")
@click.option("--input-mode", type=click.Choice(["resident", "streamed"]), default="resident",
              show_default=True, help="Whose plan the code, flash and instructions are given "
              "for (both arenas are always reported side by side).")
def estimate(model, arch, alpha, resolution, classes, targets, kernels, cmsis_nn, measure,
             ram_allowance, code_table, as_json, html_path, png_dir, quiet, force,
             input_mode) -> None:
    """Estimate arena, flash and instructions per inference, and the MCUs a model fits."""
    import os

    from mnv2gen.estimate import configs as cfg
    from mnv2gen.estimate.run import Options, work_items
    from mnv2gen.estimate.run import estimate as run_estimate
    from mnv2gen.fsutil import require_path
    from mnv2gen.outdir import check_output_directory

    if html_path is not None:
        require_path(html_path, "--html")
    if png_dir is not None:
        check_output_directory(png_dir, option="--png", force=force)
    if kernels is not None and kernels not in ("generated", "portable", "cmsis-nn"):
        raise MnvError(f"--kernels {quoted(kernels)} is not a kernel backend",
                       "choose generated, portable or cmsis-nn")
    configurations = cfg.configurations(
        model, arch, cfg.parse_list("--alpha", alpha, float),
        cfg.parse_list("--resolution", resolution, int),
        cfg.parse_list("--classes", classes, int))
    options = Options(cfg.parse_targets(targets), kernels,
                      cmsis_nn or os.environ.get("CMSIS_NN_PATH", ""), measure,
                      cfg.parse_bytes("--ram-allowance", ram_allowance), code_table,
                      input_mode)
    if png_dir:
        from mnv2gen.estimate.png import require_matplotlib

        require_matplotlib()
    show_bar = not quiet and sys.stderr.isatty()
    with click.progressbar(length=work_items(configurations, options), label="estimating",
                           file=sys.stderr, item_show_func=lambda s: s) if show_bar else \
            _NoProgress() as bar:
        report = run_estimate(configurations, options,
                              lambda label: bar.update(1, label))
    notes = []
    if html_path:
        from mnv2gen.estimate.html import render_html
        from mnv2gen.fsutil import html_by_mnv2gen

        write_file(html_path, render_html(report).encode(), option="--html", force=force,
                   ours=html_by_mnv2gen)
        notes.append(f"wrote {html_path}")
    if png_dir:
        from pathlib import Path

        from mnv2gen.estimate.png import write_pngs
        from mnv2gen.outdir import output_directory

        with output_directory(png_dir, option="--png", force=force) as staging:
            written = write_pngs(report, staging)
        notes += [f"wrote {Path(png_dir) / p.name}" for p in written]
    if as_json:
        _print_json(report)
    else:
        from mnv2gen.estimate.table import render

        click.echo(render(report))
    for note in notes:
        click.echo(note, err=as_json)


class _NoProgress:
    """Stands in for click.progressbar when no bar is shown."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, steps: int, label: str | None = None) -> None:
        """Ignore progress."""


_DEFAULT_HINTS = {
    ModelError: "the file is truncated, corrupt or not a model mnv2gen reads",
    UnsupportedError: "the README lists the supported operators, types and quantisation",
    VerificationError: "rerun with --keep DIR to inspect the generated program",
    MnvError: "see `mnv2gen COMMAND --help`",
}


def _command(argv: list[str] | None) -> str:
    """Return the subcommand named on the command line, or COMMAND."""
    words = sys.argv[1:] if argv is None else argv
    return next((w for w in words if w in cli.commands), "COMMAND")


def _say(prefix: str, text: str) -> None:
    """Print one message line to stderr: control characters gone, length bounded."""
    line = one_line(text)
    if len(line) > MESSAGE_LINE_LIMIT:
        line = line[:MESSAGE_LINE_LIMIT - 3] + "..."
    click.echo(f"{prefix}: {line}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status; errors become an `error:` and a `hint:` line.

    2: usage and input errors (MnvError, click usage errors), 1: verification mismatch,
    130: interrupted, 3: a bug (anything else), with the hint to report it.
    """
    debug = bool(os.environ.get("MNV2GEN_DEBUG"))
    with warnings.catch_warnings():
        if not debug:  # NumPy's RuntimeWarnings would print before the one-line error
            warnings.simplefilter("ignore", RuntimeWarning)
        try:
            cli.main(args=argv, prog_name="mnv2gen", standalone_mode=False)
        except MnvError as exc:
            _say("error", exc.message)
            default = _DEFAULT_HINTS.get(type(exc), _DEFAULT_HINTS[MnvError])
            _say("hint", exc.hint or default.replace("COMMAND", _command(argv)))
            return exc.exit_code
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            return 130
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "mnv2gen"
            _say("error", exc.format_message())
            _say("hint", f"see `{command} --help`")
            return 2
        except click.ClickException as exc:
            _say("error", exc.format_message())
            return 2
        except MemoryError:
            _say("error", "out of memory")
            _say("hint", "the model needs more memory than this machine has; see the "
                 "README's limits")
            return 2
        except Exception as exc:  # a bug: say so in one line instead of a traceback
            if debug:
                raise
            _say("error", f"internal error: {type(exc).__name__}: {quoted(exc, 300)}")
            _say("hint", "this is a bug in mnv2gen; please report it with the command and "
                 "the model (MNV2GEN_DEBUG=1 shows the traceback)")
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
