"""The README's first two commands are what CI and users run: keep them honest."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)


def test_readme_starts_with_the_main_job_and_the_test_command():
    first, second = _commands()[:2]
    assert "pip install" in first and "examples/quickstart.sh" in first
    assert "apt-get install" in second and "pytest" in second
    assert "gcc-arm-none-eabi" in second and "qemu-system-arm" in second


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "blocks[1]" in ci and "README.md" in ci


def test_quickstart_script_exists_and_uses_the_cli():
    script = (ROOT / "examples" / "quickstart.sh").read_text()
    assert "zoo mobilenet-v2" in script and "verify" in script and "plan" in script


def test_every_python_package_ships_in_the_wheel():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "mnv2gen").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml packages: {sorted(found - listed)}"
