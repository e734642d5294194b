"""Files of `calibrate.py`: the code fingerprint, the measurement cache and the TOML."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import subprocess
from pathlib import Path

from mnv2gen import __version__

ROOT = Path(__file__).resolve().parents[1]


def fingerprint() -> str:
    """Return a hash of everything that decides instruction counts and code size."""
    digest = hashlib.sha256()
    for folder, pattern in (("templates", "**/*"), ("mnv2gen/planner", "*.py"),
                            ("mnv2gen/codegen", "*.py"), ("mnv2gen/estimate", "features.py")):
        for path in sorted((ROOT / folder).glob(pattern)):
            if path.is_file():
                digest.update(path.relative_to(ROOT).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_cache(path: Path, stamp: str | None) -> dict[str, dict]:
    """Return the cached records measured with code of fingerprint `stamp` (any if None)."""
    records = {}
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if stamp is None or record["fingerprint"] == stamp:
                records[record["model"]] = record
    return records


def previous_fits(path: Path) -> dict:
    """Return {(target, kernels): (instruction, code coefficients)} of the current file."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {(t, k): (e["instructions"], e["code_bytes"]) for t, entries in data.items()
            if isinstance(entries, dict) for k, e in entries.items()}


def _tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def describe_run(kernels: str, cmsis_nn: str | None) -> str:
    """Return 'date; mnv2gen version (git commit); compiler; QEMU[; CMSIS-NN version]'."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    parts = [datetime.date.today().isoformat(), f"mnv2gen {__version__} (git {commit} plus "
             "working tree)", _tool_version(["arm-none-eabi-gcc", "--version"]),
             _tool_version(["qemu-system-arm", "--version"])]
    if kernels == "cmsis-nn" and cmsis_nn:
        parts.append("CMSIS-NN " + _cmsis_version(Path(cmsis_nn)))
    return "; ".join(parts)


def _cmsis_version(root: Path) -> str:
    pdsc = root / "ARM.CMSIS-NN.pdsc"
    if pdsc.exists():
        found = re.search(r'<release version="([^"]+)"', pdsc.read_text())
        if found:
            version = found.group(1)
            return ("v7 API, development checkout (pdsc release 0.0.0)" if version == "0.0.0"
                    else version)
    return "(version unknown)"


def _toml_value(value) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _toml_key(key: str) -> str:
    return key if all(c.isalnum() or c in "-_" for c in key) else json.dumps(key)


HEADER = """\
# Calibration of `mnv2gen estimate`, one table per target and kernel backend.
#
# instructions: instructions per plan step = sum over the work counts of
#   mnv2gen/estimate/features.py (MACs and output elements per kernel kind, kernel calls,
#   elementwise elements, bytes moved) of coefficient x count; an inference is the sum
#   over the plan's steps. Fitted by non-negative least squares on the per-step QEMU
#   instruction counts (-icount shift=0, SysTick: instruction counts, not cycles) of the
#   synthesized models of benchmarks/calibration_models.py (zoo MobileNetV2/V1 and random
#   MBConv nets with placeholder weights), one random input each, every step weighted by
#   1 / its model's total.
# code_bytes: flash bytes of the generated library besides its constant arrays, as
#   mnv2gen/estimate/codesize.py measures them with arm-none-eabi-size; used when no Arm
#   toolchain is installed. Fitted on the same builds.
# fit_error_pct: largest |error| of the instruction fit on the calibration models (on all
#   of the target's measured models when its coefficients come from another target).
# code_error_pct: largest |error| of the code-size table on the calibration and shared
#   models measured on the target.
# shared_error_pct: signed error (estimate / QEMU - 1, %) on each shared real model
#   (../shared/models/tflite), measured in the same run; they are not in the fit.
# measured: date, mnv2gen, compiler, QEMU (and CMSIS-NN) of the run. A target whose file
#   has a [calibration] table (cortex-m0: a 16 KiB nRF51) is measured on the same QEMU core
#   with that table's larger memories (Target.for_calibration).
# Regenerate: python benchmarks/calibrate.py --target T --kernels K [--cmsis-nn PATH]
"""


def write(path: Path, entries: dict[tuple[str, str], dict]) -> None:
    """Write the calibration file: existing tables kept, `entries` replaced."""
    import tomllib

    current = tomllib.loads(path.read_text()) if path.exists() else {}
    for (target, kernels), entry in entries.items():
        current.setdefault(target, {})[kernels] = entry
    lines = [HEADER]
    for target in sorted(current):
        for kernels in sorted(current[target]):
            entry = current[target][kernels]
            lines.append(f"[{target}.{kernels}]")
            for key in ("measured", "coefficients_from", "models", "fit_error_pct",
                        "code_error_pct", "instructions", "code_bytes"):
                if key in entry:
                    lines.append(f"{key} = {_toml_value(entry[key])}")
            lines.append(f"\n[{target}.{kernels}.shared_error_pct]")
            lines += [f"{_toml_key(k)} = {v!r}" for k, v in entry["shared_error_pct"].items()]
            lines.append("")
    path.write_text("\n".join(lines))
