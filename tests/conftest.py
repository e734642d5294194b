"""Shared fixtures: where the real models live, and the CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

# Multithreaded BLAS on small matrices costs 5-8x on a shared 2-core machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest

SHARED_MODELS = Path(os.environ.get(
    "MNV2GEN_SHARED_MODELS", Path(__file__).resolve().parents[2] / "shared" / "models"))


def shared_tflite_models() -> list[Path]:
    """Return the shared .tflite models (empty when ../shared/models is absent)."""
    folder = SHARED_MODELS / "tflite"
    return sorted(folder.glob("*.tflite")) if folder.is_dir() else []


def model_params():
    """Return pytest params, one per shared model, or one skip marker when there are none."""
    models = shared_tflite_models()
    if not models:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"shared models not found at {SHARED_MODELS} (set MNV2GEN_SHARED_MODELS)"))]
    return [pytest.param(p, id=p.stem) for p in models]


@pytest.fixture
def shared_models() -> Path:
    """Return the shared models folder, skipping the test when it is absent."""
    if not (SHARED_MODELS / "tflite").is_dir():
        pytest.skip(f"shared models not found at {SHARED_MODELS} (set MNV2GEN_SHARED_MODELS)")
    return SHARED_MODELS


@pytest.fixture
def shared_model(shared_models):
    """Return a function name-prefix -> path of one shared .tflite model."""
    def find(prefix: str) -> Path:
        hits = sorted((shared_models / "tflite").glob(f"{prefix}*.tflite"),
                      key=lambda p: len(p.name))
        if not hits:
            pytest.skip(f"shared model {prefix}* not found")
        return hits[0]
    return find


@pytest.fixture
def run_cli(capsys):
    """Return a function that runs the CLI in-process and returns (exit, stdout, stderr)."""
    from mnv2gen.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(map(str, args)))
        out = capsys.readouterr()
        return code, out.out, out.err
    return invoke


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the current code generator")
