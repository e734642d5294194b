"""What to estimate: model files, or model-free MobileNet configurations (sweeps)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from mnv2gen.errors import MnvError, file_label, quoted
from mnv2gen.ir import Graph
from mnv2gen.zoo import ARCHS, architecture, model_name


@dataclass(frozen=True)
class Configuration:
    """One model to estimate: a file, or an architecture with width, resolution, classes."""

    name: str
    model: str | None = None
    arch: str | None = None
    alpha: float | None = None
    resolution: int | None = None
    classes: int | None = None

    @property
    def model_free(self) -> bool:
        """Return True when the model is synthesized from its description."""
        return self.model is None

    def describe(self) -> dict:
        """Return the configuration as JSON-ready keys."""
        return {"name": self.name, "source": "model-free" if self.model_free else "model file",
                "model": self.model, "arch": self.arch, "alpha": self.alpha,
                "resolution": self.resolution, "classes": self.classes}

    def load(self) -> Graph:
        """Return the graph to plan: the model file through the front end and passes, or
        a shape-exact stand-in of `mnv2gen zoo`'s synthesized model (see standin.py)."""
        if self.model is not None:
            from mnv2gen.loader import load_model

            return load_model(self.model)
        from mnv2gen.estimate.standin import standin_graph

        return standin_graph(self.arch, self.alpha, self.resolution, self.classes)

    def load_for_measurement(self) -> Graph:
        """Return the graph to run in QEMU: the model file, or the synthesized model with
        trained-looking weights exactly as `mnv2gen zoo` writes it (seed 0)."""
        if self.model is not None:
            return self.load()
        from mnv2gen.zoo import synthesize

        return synthesize(self.arch, self.alpha, self.resolution, self.classes)


def parse_list(option: str, text: str | None, cast) -> tuple | None:
    """Return a comma list like '0.35,0.5' cast element-wise (None stays None); MnvError
    naming the option on a malformed list."""
    if text is None:
        return None
    try:
        values = tuple(cast(v.strip()) for v in text.split(","))
    except ValueError:
        kind = "numbers" if cast is float else "integers"
        raise MnvError(f"{option} {quoted(text)} is not a comma-separated list of {kind}",
                       f"e.g. {option} {'0.35,0.5,1.0' if cast is float else '96,128,224'}"
                       ) from None
    if len(set(values)) != len(values):
        raise MnvError(f"{option} {quoted(text)} lists a value twice")
    return values


def configurations(model: str | None, arch: str | None, alphas: tuple | None,
                   resolutions: tuple | None, classes: tuple | None) -> list[Configuration]:
    """Return the configurations a command line asks for, checked before any work starts.

    Either a model file, or --arch with --alpha/--resolution/--classes lists (the cross
    product is swept); mixing them, or giving neither, is a usage error (MnvError).
    """
    described = [o for o, v in (("--alpha", alphas), ("--resolution", resolutions),
                                ("--classes", classes)) if v is not None]
    if model is not None:
        if arch is not None or described:
            raise MnvError(f"give a model file or a model-free description, not both "
                           f"({file_label(model)} with {arch and '--arch' or described[0]})",
                           "drop MODEL to estimate a configuration, or drop --arch/--alpha/"
                           "--resolution/--classes to estimate the file")
        if not Path(model).is_file():
            raise MnvError(f"{file_label(model)}: no such file")
        return [Configuration(Path(model).stem, model=model)]
    if arch is None:
        raise MnvError("nothing to estimate: give a model file or --arch",
                       f"e.g. mnv2gen estimate --arch mobilenet-v2 --alpha 0.35 --resolution 96"
                       f" --classes 1000 (architectures: {', '.join(ARCHS)})")
    result = []
    for alpha, resolution, k in itertools.product(alphas or (1.0,), resolutions or (224,),
                                                  classes or (1000,)):
        architecture(arch, alpha, resolution, k)  # raises MnvError for out-of-range values
        name = model_name(arch, alpha, resolution) + (f"_{k}cls" if classes and
                                                       len(classes) > 1 else "")
        result.append(Configuration(name, arch=arch, alpha=alpha, resolution=resolution,
                                    classes=k))
    return result


def parse_bytes(option: str, text: str) -> int:
    """Return a byte count from '8192', '8k' or '1.5M' (k and M are 1024-based); MnvError
    naming the option otherwise."""
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    scale = {"k": 1024, "m": 1024 * 1024}.get(value[-1:], 1)
    try:
        number = float(value[:-1] if scale > 1 else value)
    except ValueError:
        raise MnvError(f"{option} {quoted(text)} is not a byte count",
                       f"give bytes, e.g. {option} 8192 or {option} 8k") from None
    if not math.isfinite(number) or number < 0 or number * scale >= 1 << 40:
        raise MnvError(f"{option} {quoted(text)} is not a byte count from 0 to 1 TiB",
                       f"give bytes, e.g. {option} 8192 or {option} 8k")
    return int(number * scale)


def parse_targets(values: tuple[str, ...]) -> tuple[str, ...]:
    """Return the targets of repeated and comma-separated --target values (in order,
    without repeats), or every Cortex-M target when none is given."""
    from mnv2gen.toolchain import list_targets, load_target

    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        names = []
        for name in list_targets():
            try:
                if not load_target(name).is_host:
                    names.append(name)
            except MnvError:
                continue  # a data file next to the targets, not a target
    for name in names:
        load_target(name)  # MnvError for an unknown target
    return tuple(dict.fromkeys(names))
