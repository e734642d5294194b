"""The examples of examples/sweep, examples/classify_photo and examples/firmware_stm32f405
run as their READMEs say, and print what they claim."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnv2gen.toolchain import missing_tools

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MNV2GEN_SHARED_MODELS", ROOT.parent / "shared" / "models"))
ENV = dict(os.environ, MNV2GEN=f"{sys.executable} -m mnv2gen",
           PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
VENV_MNV2GEN = ROOT / ".venv" / "bin" / "mnv2gen"


def verbatim_env() -> dict:
    """The environment of a user after the README's first command: the checkout's .venv
    exists but is not active (no mnv2gen on PATH, no MNV2GEN). Without a .venv in the
    checkout (tests run from elsewhere) the scripts get MNV2GEN instead."""
    if not VENV_MNV2GEN.exists():
        return ENV
    env = {k: v for k, v in os.environ.items()
           if k not in ("MNV2GEN", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                  if p and not (Path(p) / "mnv2gen").exists())
    return env


def needs(target: str):
    missing = missing_tools(target) + ([] if shutil.which("make") else ["make"])
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (apt-get "
                              "install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                              "qemu-system-arm make)")


def test_sweep_prints_which_parts_each_configuration_fits(tmp_path):
    done = subprocess.run(["bash", "examples/sweep/sweep.sh", str(tmp_path)],
                          capture_output=True, text=True, env=verbatim_env(), cwd=ROOT,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("mobilenet_v2_")]
    assert len(rows) == 16
    assert re.match(r"mobilenet_v2_0\.35_96 +12M +135 +29 +12 +\d+ +.*STM32H743", rows[0])
    # 1.0/224 fits the i.MX RT1062's 768 KiB block only with mnv2gen's plan
    assert re.search(r"\(.*i\.MX RT1062.*\)$",
                     next(r for r in rows if r.startswith("mobilenet_v2_1.0_224 ")))
    assert (tmp_path / "sweep.html").stat().st_size > 100_000
    assert (tmp_path / "sweep.json").exists()


@pytest.mark.qemu
@needs("stm32f405")
def test_firmware_runs_on_the_stm32f405_and_matches_the_reference(tmp_path):
    from mnv2gen.loader import load_model
    from mnv2gen.reference import run as reference

    done = subprocess.run(["bash", "examples/firmware_stm32f405/build.sh", str(tmp_path)],
                          capture_output=True, text=True, env=verbatim_env(), cwd=ROOT,
                          timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    printed = re.search(r"^output:((?: -?\d+)+)$", done.stdout, re.M)
    assert printed, done.stdout[-2000:]
    device = np.array([int(v) for v in printed.group(1).split()], dtype=np.int8)
    graph = load_model(tmp_path / "model.tflite")
    shape = graph.tensor(graph.inputs[0]).shape
    pattern = ((np.arange(int(np.prod(shape))) * 7) % 251 - 125).astype(np.int8)
    expected = reference(graph, [pattern.reshape(shape)])[0].reshape(-1)
    assert np.array_equal(device, expected)
    assert f"best class: {int(np.argmax(expected))} " in done.stdout
    # the README shows this run's output: the zoo writes the same model on every machine
    readme = (ROOT / "examples" / "firmware_stm32f405" / "README.md").read_text()
    assert printed.group(0) in readme.splitlines()


@pytest.mark.qemu
@needs("cortex-m7")
def test_classify_photo_finds_the_true_class_in_the_top_5():
    pytest.importorskip("PIL", reason="the example loads the photo with Pillow")
    model = SHARED / "tflite" / "aquapapaya_keras_mobilenet_v2_1.0_224_ptq_int8.tflite"
    photo = SHARED / "testvectors" / "imagenet50_aquapapaya" / "1.jpg"
    labels = SHARED / "labels" / "imagenet_classes_1000.txt"
    if not (model.exists() and photo.exists() and labels.exists()):
        pytest.skip(f"shared models not found at {SHARED} (set MNV2GEN_SHARED_MODELS)")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "classify_photo" /
                                               "classify.py"), str(model), str(photo),
                           "--labels", str(labels)],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bit-exact with the NumPy reference" in done.stdout
    top5 = re.findall(r"^  \d\. (.+) \(class (\d+)\): ", done.stdout, re.M)
    assert len(top5) == 5
    true_class = int(photo.stem)
    assert true_class in [int(i) for _, i in top5]
    assert top5[0] == ("goldfish", "1")


def test_examples_without_mnv2gen_say_so_in_one_line(tmp_path):
    env = {k: v for k, v in verbatim_env().items() if k != "MNV2GEN"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not (Path(p) / "mnv2gen").exists())
    fake_root = tmp_path / "checkout"  # a copy of the script away from any .venv
    (fake_root / "examples" / "sweep").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "sweep" / "sweep.sh", fake_root / "examples" / "sweep")
    done = subprocess.run(["bash", "examples/sweep/sweep.sh", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, cwd=fake_root, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: mnv2gen not found") and done.stderr.count("\n") == 1


def test_classify_photo_without_pillow_is_a_one_line_error(tmp_path):
    from mnv2gen.frontend.tflite_writer import write_tflite
    from mnv2gen.zoo import synthesize

    model = tmp_path / "tiny.tflite"
    model.write_bytes(write_tflite(synthesize("mobilenet-v2", 0.35, 32, 4)))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(4)))
    blocker = tmp_path / "no_pil" / "PIL"  # an installation without Pillow
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError(\"No module named 'PIL'\")\n")
    env = dict(ENV, PYTHONPATH=os.pathsep.join([str(blocker.parent), ENV["PYTHONPATH"]]))
    done = subprocess.run([sys.executable, "examples/classify_photo/classify.py", str(model),
                           str(tmp_path / "photo.jpg"), "--labels", str(labels),
                           "--target", "host"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == "error: reading the photo needs Pillow"


def test_default_output_folders_of_the_examples_are_ignored_by_git():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    for folder in ("quickstart-out", "sweep-out", "examples/firmware_stm32f405/build"):
        done = subprocess.run(["git", "check-ignore", "-q", f"{folder}/x"], cwd=ROOT)
        assert done.returncode == 0, f"{folder} is not ignored by git"
