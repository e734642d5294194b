"""The shipped calibration (targets/calibration.toml): instruction and code-size models.

For each target and kernel backend the file holds one coefficient per work count of
`mnv2gen.estimate.features` (instructions per inference = the sum over plan steps of
coefficient x count) and one per code feature (code bytes when no toolchain is at hand),
with the errors they were measured to have. benchmarks/calibrate.py writes it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mnv2gen.errors import MnvError
from mnv2gen.estimate.features import CODE_FEATURES, FEATURES
from mnv2gen.toolchain.targets import package_dir

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

FILE = "calibration.toml"


@dataclass(frozen=True)
class Calibration:
    """The fitted models of one target and kernel backend, and their measured errors."""

    target: str
    kernels: str
    measured: str                        # when, and with which toolchain
    instructions: dict[str, float]       # feature -> instructions per count
    code_bytes: dict[str, float]         # code feature -> bytes
    fit_error_pct: float                 # largest |error| on the calibration models
    code_error_pct: float                # largest |error| of the code-size table (all models)
    shared_error_pct: dict[str, float]   # shared model -> signed error of the estimate, %
    coefficients_from: str | None = None  # a target compiling to the same code

    def instructions_for(self, features: dict[str, int]) -> int:
        """Return the estimated instructions of work counts `features` (a step or a plan)."""
        return round(sum(self.instructions.get(k, 0.0) * v for k, v in features.items()))

    def code_bytes_for(self, features: dict[str, int]) -> int:
        """Return the code bytes the table predicts for `code_features` of a plan."""
        return round(sum(self.code_bytes.get(k, 0.0) * v for k, v in features.items()))

    @property
    def max_shared_error_pct(self) -> float | None:
        """Return the largest |error| of the estimate on the shared models, or None."""
        return max((abs(v) for v in self.shared_error_pct.values()), default=None)


@functools.cache
def _load() -> dict:
    source = package_dir("mnv2gen.targets", "targets") / FILE
    try:
        return tomllib.loads(source.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MnvError(f"targets/{FILE}: cannot read the calibration: {exc}",
                       "reinstall mnv2gen or rerun benchmarks/calibrate.py") from exc


def calibration(target: str, kernels: str) -> Calibration | None:
    """Return the Calibration of `target` with `kernels` (portable or cmsis-nn), or None
    when none was measured for that pair."""
    entry = _load().get(target, {}).get(kernels)
    if entry is None:
        return None
    unknown = (set(entry["instructions"]) - set(FEATURES)) | (
        set(entry["code_bytes"]) - set(CODE_FEATURES))
    if unknown:
        raise MnvError(f"targets/{FILE}: [{target}.{kernels}] has unknown features "
                       f"{sorted(unknown)}", "rerun benchmarks/calibrate.py")
    return Calibration(target, kernels, entry["measured"], dict(entry["instructions"]),
                       dict(entry["code_bytes"]), float(entry["fit_error_pct"]),
                       float(entry["code_error_pct"]),
                       {k: float(v) for k, v in entry.get("shared_error_pct", {}).items()},
                       entry.get("coefficients_from"))


def calibrated_pairs() -> list[tuple[str, str]]:
    """Return every (target, kernels) pair the shipped file calibrates."""
    return [(t, k) for t, entries in _load().items() if isinstance(entries, dict)
            for k in entries]
