"""The `mnv2gen` command line: parses options, calls the library, maps errors to exits.

Exit status: 0 success, 1 verification mismatch, 2 usage or input error.
"""

from __future__ import annotations

import io
import json
import sys

import click
import numpy as np

from mnv2gen import __version__
from mnv2gen.errors import MnvError, VerificationError
from mnv2gen.fsutil import atomic_write_bytes


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
    line = f"{name}: {array.dtype}{list(array.shape)} [{head}]"
    if array.ndim == 2 and array.shape[0] == 1 and array.shape[1] > 1:
        top = np.argsort(-flat.astype(np.float64), kind="stable")[:5]
        line += "\n  top-5 class indices: " + ", ".join(f"{i} ({flat[i]})" for i in top)
    return line


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Input as .npy with the model's input shape and dtype (default: random).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random input.")
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False),
              help="Write the output array here as .npy (the model's output dtype).")
@click.option("--check-tflm", is_flag=True,
              help="Also run the TFLite Micro interpreter and compare bit for bit (exit 1 "
                   "on any difference; needs the tflm extra).")
def run(model: str, input_path: str | None, seed: int, output_path: str | None,
        check_tflm: bool) -> None:
    """Run the bit-exact NumPy int8 reference on one input."""
    from mnv2gen.frontend.tflite import read_model_bytes
    from mnv2gen.inputs import load_input, random_inputs
    from mnv2gen.loader import load_model
    from mnv2gen.reference import run as run_reference

    graph = load_model(model)
    inputs = load_input(graph, input_path) if input_path else random_inputs(graph, seed)
    outputs = run_reference(graph, inputs)
    source = input_path or f"random input (seed {seed})"
    click.echo(f"{graph.name}: reference run on {source}")
    for name, array in zip(graph.outputs, outputs):
        click.echo(_describe_output(name, array))
    if check_tflm:
        from mnv2gen.tflm import compare_with_tflm

        verdict = compare_with_tflm(read_model_bytes(model), inputs, outputs)
        click.echo(verdict.describe())
        if not verdict.bit_exact:
            raise VerificationError(f"{model}: reference and TFLite Micro differ in "
                                    f"{verdict.mismatched_bytes} bytes")
    if output_path:
        if len(outputs) != 1:
            raise MnvError(f"the model has {len(outputs)} outputs; -o writes one")
        buf = io.BytesIO()
        np.save(buf, outputs[0], allow_pickle=False)
        atomic_write_bytes(output_path, buf.getvalue())
        click.echo(f"wrote {output_path}")


@cli.command()
@click.argument("arch", type=click.Choice(["mobilenet-v2", "mobilenet-v1"]))
@click.option("--alpha", type=float, default=1.0, show_default=True, help="Width multiplier.")
@click.option("--resolution", type=int, default=224, show_default=True,
              help="Input height and width.")
@click.option("--classes", type=int, default=1000, show_default=True, help="Output classes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights.")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the .tflite file.")
def zoo(arch: str, alpha: float, resolution: int, classes: int, seed: int,
        output_path: str) -> None:
    """Synthesize an int8 MobileNet .tflite with random weights and realistic quantisation."""
    from mnv2gen.zoo import synthesize_tflite

    data = synthesize_tflite(arch, alpha, resolution, classes, seed)
    atomic_write_bytes(output_path, data)
    click.echo(f"wrote {output_path}: {arch} alpha={alpha} resolution={resolution} "
               f"classes={classes} seed={seed} ({len(data):,} bytes)")


def _parse_bytes(value: str | None) -> int | None:
    """Return a byte count from '131072', '128k' or '1.5M' (k and M are 1024-based)."""
    if value is None:
        return None
    text = value.strip().lower().removesuffix("b")
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    try:
        number = float(text[:-1] if scale > 1 else text)
    except ValueError:
        raise MnvError(f"--ram-budget {value!r} is not a byte count",
                       "give bytes, e.g. 131072, 128k or 1.5M") from None
    if number <= 0:
        raise MnvError(f"--ram-budget {value!r} must be positive")
    return int(number * scale)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--scheme", type=click.Choice(["layer", "bottleneck", "auto"]), default="auto",
              show_default=True, help="layer = every tensor materialised (the baseline); "
              "bottleneck = only block inputs/outputs resident, expansions chunked.")
@click.option("--ram-budget", help="Pick the cheapest plan that fits this many bytes "
              "(e.g. 131072, 128k).")
@click.option("--kernel-set", type=click.Choice(["portable", "cmsis-c", "cmsis-dsp",
                                                  "cmsis-mve"]), default="portable",
              show_default=True, help="Kernel scratch rules to plan for.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(model: str, scheme: str, ram_budget: str | None, kernel_set: str,
         as_json: bool) -> None:
    """Plan the static arena: peak bytes, the layer-by-layer baseline and an arena map."""
    from mnv2gen.frontend.tflite import read_model_bytes
    from mnv2gen.loader import load_model
    from mnv2gen.passes.integer_core import integer_core
    from mnv2gen.planner.plan import plan_model
    from mnv2gen.planner.report import plan_report, render_plan
    from mnv2gen.tflm import tflm_arena_bytes, tflm_available

    core = integer_core(load_model(model))
    chosen = plan_model(core, scheme, kernel_set, _parse_bytes(ram_budget))
    baseline = plan_model(core, "layer", kernel_set)
    tflm = tflm_arena_bytes(read_model_bytes(model)) if tflm_available() else None
    report = plan_report(chosen, baseline, tflm)
    _print_json(report) if as_json else click.echo(render_plan(report, chosen))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status; MnvErrors become one-line messages."""
    try:
        cli.main(args=argv, prog_name="mnv2gen", standalone_mode=False)
    except MnvError as exc:
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
