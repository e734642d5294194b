"""Output files and folders belong to the user: mnv2gen never deletes or overwrites what it
did not write, replaces its own output atomically and survives concurrent and killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnv2gen.frontend.tflite_writer import write_tflite
from mnv2gen.fsutil import write_file
from mnv2gen.outdir import MANIFEST, STAGING_PREFIX
from mnv2gen.zoo import synthesize

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = "is not empty and was not written by mnv2gen"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    path.write_bytes(write_tflite(synthesize("mobilenet-v2", 0.35, 32, 4, seed=0)))
    return path


def _build(run_cli, model, out, *extra):
    return run_cli("build", model, "--target", "host", "--kernels", "portable", "-o", out,
                   *extra)


def _cli(*args, cwd=None, umask=None, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "mnv2gen", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
                            **kw)


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_build_into_a_folder_with_a_users_file_refuses_and_keeps_it(model, tmp_path, run_cli,
                                                                    monkeypatch):
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = _build(run_cli, model, ".")
    assert code == 2
    assert err.splitlines()[0] == f"error: . {FOREIGN}"
    assert err.splitlines()[1].startswith("hint:") and "--force" in err
    assert _listing(tmp_path) == ["main.c"]


def test_build_into_an_empty_working_directory_and_again(model, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _build(run_cli, model, ".")[0] == 0
    first = _listing(tmp_path)
    assert "mnv2_model.c" in first and MANIFEST in first
    assert _build(run_cli, model, ".")[0] == 0
    assert _listing(tmp_path) == first and tmp_path.is_dir()


@pytest.mark.parametrize("option", ["-o", "--keep"])
def test_empty_output_path_is_a_usage_error(model, run_cli, option):
    args = (["build", model, "--target", "host", "-o", ""] if option == "-o" else
            ["verify", model, "--target", "host", "--keep", ""])
    code, _, err = run_cli(*args)
    assert code == 2 and err.startswith(f"error: {option} needs a path")


def test_foreign_folder_needs_force_and_force_touches_only_generated_names(model, tmp_path,
                                                                           run_cli):
    out = tmp_path / "src" / "model"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "Makefile").write_text("# my makefile\n")
    code, _, err = _build(run_cli, model, out)
    assert code == 2 and FOREIGN in err
    assert (out / "Makefile").read_text() == "# my makefile\n"
    assert _build(run_cli, model, out, "--force")[0] == 0
    assert (out / "notes.txt").read_text() == "mine"  # never touched
    assert "mnv2gen" in (out / "Makefile").read_text()  # a generated name: replaced
    assert _build(run_cli, model, out)[0] == 2  # notes.txt is still not mnv2gen's


def test_existing_file_as_output_folder_is_refused(model, tmp_path, run_cli):
    target = tmp_path / "lib"
    target.write_text("a file")
    code, _, err = _build(run_cli, model, target)
    assert code == 2 and "exists and is not a folder" in err
    assert target.read_text() == "a file"


def test_root_is_refused(model, run_cli):
    code, _, err = _build(run_cli, model, "/")
    assert code == 2 and "refusing to write into the root folder" in err


def test_changed_generated_file_needs_force_and_stale_outputs_go(model, tmp_path, run_cli):
    out = tmp_path / "lib"
    assert _build(run_cli, model, out)[0] == 0
    with open(out / "mnv2_model.c", "a") as f:
        f.write("/* my edit */\n")
    code, _, err = _build(run_cli, model, out)
    assert code == 2 and "mnv2_model.c was changed after mnv2gen wrote it" in err
    assert "my edit" in (out / "mnv2_model.c").read_text()
    assert _build(run_cli, model, out, "--force")[0] == 0
    assert "my edit" not in (out / "mnv2_model.c").read_text()
    # a file an earlier version wrote and this one does not is deleted, make's output stays
    manifest = json.loads((out / MANIFEST).read_text())
    (out / "old_kernels.c").write_text("old")
    import hashlib
    manifest["files"]["old_kernels.c"] = [hashlib.sha256(b"old").hexdigest()]
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "build").mkdir()
    (out / "build" / "mnv2_model.o").write_bytes(b"\0")
    (out / "libmnv2.a").write_bytes(b"!<arch>\n")
    assert _build(run_cli, model, out)[0] == 0
    assert not (out / "old_kernels.c").exists()
    assert (out / "build" / "mnv2_model.o").exists() and (out / "libmnv2.a").exists()


@pytest.mark.parametrize("umask, dirs, files", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_modes_follow_the_umask(model, tmp_path, umask, dirs, files):
    out = tmp_path / "lib"
    done = _cli("build", model, "--target", "host", "--kernels", "portable", "-o", out,
                umask=umask)
    assert done.wait(300) == 0, done.stderr.read()
    assert out.stat().st_mode & 0o777 == dirs
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {files}
    zoo = tmp_path / "zoo.tflite"
    done = _cli("zoo", "mobilenet-v1", "--alpha", "0.25", "--resolution", "32", "--classes",
                "2", "-o", zoo, umask=umask)
    assert done.wait(300) == 0, done.stderr.read()
    assert zoo.stat().st_mode & 0o777 == files


def test_concurrent_builds_into_one_folder_wait_for_each_other(model, tmp_path):
    out = tmp_path / "lib"
    for _ in range(3):
        runs = [_cli("build", model, "--target", "host", "--kernels", "portable", "-o", out)
                for _ in range(2)]
        for run in runs:
            assert run.wait(300) == 0, run.stderr.read()
        manifest = json.loads((out / MANIFEST).read_text())
        present = {p for p in _listing(out) if not p.startswith(".mnv2gen")}
        assert present == set(manifest["files"])
        assert not any(p.name.startswith(STAGING_PREFIX) for p in out.iterdir())


def test_a_killed_build_leaves_nothing_the_next_one_does_not_clean(model, tmp_path):
    out = tmp_path / "lib"
    run = _cli("build", model, "--target", "host", "--kernels", "portable", "-o", out)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.name.startswith(STAGING_PREFIX) for p in out.iterdir())):
        assert run.poll() is None and time.monotonic() < deadline, "no staging folder seen"
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait(60)
    again = _cli("build", model, "--target", "host", "--kernels", "portable", "-o", out)
    assert again.wait(300) == 0, again.stderr.read()
    assert not any(p.name.startswith(STAGING_PREFIX) for p in out.iterdir())
    assert (out / "mnv2_model.c").exists()


def test_zoo_and_quantize_outputs_follow_the_file_rules(tmp_path, run_cli):
    out = tmp_path / "m.tflite"
    zoo = ["zoo", "mobilenet-v1", "--alpha", "0.25", "--resolution", "32", "--classes", "2"]
    out.write_bytes(b"TFL3 a model someone trained")
    code, _, err = run_cli(*zoo, "-o", out)
    assert code == 2 and "exists and was not written by mnv2gen" in err
    assert out.read_bytes() == b"TFL3 a model someone trained"
    assert run_cli(*zoo, "-o", out, "--force")[0] == 0
    assert run_cli(*zoo, "-o", out)[0] == 0  # its own output: replaced
    assert run_cli(*zoo, "-o", "")[0] == 2
    code, _, err = run_cli(*zoo, "-o", tmp_path)
    assert code == 2


def test_run_output_replaces_only_an_array_of_the_same_kind(model, tmp_path, run_cli):
    out = tmp_path / "y.npy"
    assert run_cli("run", model, "-o", out)[0] == 0
    assert run_cli("run", model, "-o", out, "--seed", "3")[0] == 0
    np.save(out, np.zeros((5, 5), np.float32))  # e.g. the user's calibration batch
    code, _, err = run_cli("run", model, "-o", out)
    assert code == 2 and "exists and was not written by mnv2gen" in err
    assert np.load(out).shape == (5, 5)
    archive = tmp_path / "y.npz"
    assert run_cli("run", model, "-o", archive)[0] == 0
    assert run_cli("run", model, "-o", archive)[0] == 0
    np.savez(archive, batch=np.zeros(3))
    assert run_cli("run", model, "-o", archive)[0] == 2


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    target = tmp_path / "report.html"
    stale = tmp_path / ".report.html.mnv2gen-abc123.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 60, time.time() - 60))
    write_file(target, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    target = tmp_path / "report.html"
    write_file(target, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_verify_keep_follows_the_folder_rules_and_keeps_a_runnable_harness(model, tmp_path,
                                                                          run_cli):
    from codegen_helpers import need_toolchain

    need_toolchain("host")
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("x")
    verify = ["verify", model, "--target", "host", "--kernels", "portable", "--inputs", "1",
              "--keep", keep]
    code, _, err = run_cli(*verify)
    assert code == 2 and FOREIGN in err
    (keep / "mine.txt").unlink()
    assert run_cli(*verify)[0] == 0
    assert run_cli(*verify)[0] == 0  # its own output: replaced
    harness = (keep / "verify_main.c").read_text()
    assert '"input_0.bin"' in harness and str(tmp_path) not in harness
    done = subprocess.run([str(keep / "build" / "app")], cwd=keep, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_estimate_html_and_png_follow_the_rules(tmp_path, run_cli):
    pytest.importorskip("matplotlib")
    html, png = tmp_path / "report.html", tmp_path / "charts"
    args = ["estimate", "--arch", "mobilenet-v2", "--alpha", "0.35", "--resolution", "96",
            "--classes", "10", "--target", "cortex-m4", "--code-table", "--quiet"]
    html.write_text("<html>my page</html>")
    png.mkdir()
    (png / "photo.png").write_bytes(b"\x89PNG mine")
    code, _, err = run_cli(*args, "--html", html)
    assert code == 2 and "exists and was not written by mnv2gen" in err
    code, _, err = run_cli(*args, "--png", png)
    assert code == 2 and FOREIGN in err
    (png / "photo.png").unlink()
    assert run_cli(*args, "--html", html, "--force", "--png", png)[0] == 0
    assert run_cli(*args, "--html", html, "--png", png)[0] == 0  # both are mnv2gen's now
    assert "<meta name=generator content=mnv2gen>" in html.read_text()
    assert any(p.suffix == ".png" for p in png.iterdir())
