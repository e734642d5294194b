"""The README's main job runs end to end as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_and_reports_bit_exactness(tmp_path):
    pytest.importorskip("tflite_micro", reason="the quickstart cross-checks with tflite-micro")
    from codegen_helpers import need_toolchain

    need_toolchain("cortex-m7")
    env = dict(os.environ, MNV2GEN=f"{sys.executable} -m mnv2gen")
    result = subprocess.run(["bash", str(ROOT / "examples" / "quickstart.sh"), str(tmp_path)],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "TFLite Micro: bit-exact" in result.stdout
    assert "peak arena" in result.stdout and "arena map" in result.stdout
    assert "on cortex-m7 (portable kernels): bit-exact, 0 of" in result.stdout
    assert (tmp_path / "mnv2_cortex_m7" / "mnv2_model.c").exists()
