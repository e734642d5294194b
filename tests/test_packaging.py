"""`pip install .` must ship templates/ and targets/ inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_templates_and_targets(tmp_path):
    pytest.importorskip("wheel", reason="building a wheel offline needs setuptools and wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("mnv2gen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("mnv2gen/templates/runtime/mnv2_ops.h",
                     "mnv2gen/templates/runtime/mnv2_fused.c",
                     "mnv2gen/templates/runtime/mnv2_segment.c",
                     "mnv2gen/templates/ops/segment.c.j2",
                     "mnv2gen/templates/ops/fused.c.j2", "mnv2gen/templates/model/mnv2_model.c.j2",
                     "mnv2gen/templates/harness/link.ld.j2", "mnv2gen/targets/cortex-m7.toml",
                     "mnv2gen/targets/stm32f405.toml", "mnv2gen/cli.py",
                     "mnv2gen/planner/plan.py", "mnv2gen/toolchain/build.py"):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)
