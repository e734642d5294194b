"""Hostile names and file names never reach generated files, messages or a shell.

Each hostile build is compared with the same model under plain names: the preprocessed C
(comments gone) must be identical, the headers, Makefile, CMakeLists.txt and REPORT.md
identical up to the model's sha256; `make`, CMake and the generated program run without
creating the marker file every payload tries to `touch`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from codegen_helpers import need_toolchain
from fuzz_models import consistent_model, consistent_tflite, tiny_qdq_onnx
from fuzz_mutator import HOSTILE_NAMES, custom_op_tflite, rename_onnx

from mnv2gen.codegen.text import c_string, comment_text, safe_basename
from mnv2gen.errors import quoted
from mnv2gen.frontend.tflite_writer import write_tflite
from mnv2gen.ir import Tensor
from mnv2gen.toolchain import load_target
from mnv2gen.toolchain.build import tools

TEXT_FILES = ("mnv2_model.h", "mnv2_weights.h", "Makefile", "CMakeLists.txt", "REPORT.md")
C_FILES = ("mnv2_model.c", "mnv2_weights.c")
MARKER = "INJECTED"
HOSTILE_FILE_NAMES = ("m\nall:;@touch INJECTED\n#.tflite",
                      'x" )\nexecute_process(COMMAND touch INJECTED)\n#(.tflite',
                      "x* int injected; *x ??=.tflite", "caf\u00e9 \u2603 \u202e.tflite",
                      "$(shell touch INJECTED) ${X}.tflite", "-rf .tflite")


@pytest.fixture(scope="module")
def qdq(tmp_path_factory) -> bytes:
    data = tiny_qdq_onnx(tmp_path_factory.mktemp("qdq"))
    if data is None:
        pytest.skip("onnxruntime is not installed (pip install '.[test]')")
    return data


@pytest.fixture(scope="module")
def qoperator(tmp_path_factory) -> bytes:
    data = tiny_qdq_onnx(tmp_path_factory.mktemp("qop"), 5, qoperator=True)
    if data is None:
        pytest.skip("onnxruntime is not installed (pip install '.[test]')")
    return data


def _preprocessed(out: Path, target: str) -> str:
    tgt = load_target(target)
    cc = tools(tgt)["cc"]
    text = []
    for name in C_FILES:
        done = subprocess.run([cc, *tgt.machine_flags, "-E", "-P", f"-I{out}", str(out / name)],
                              capture_output=True, text=True, check=True)
        text.append(done.stdout)
    return "\n".join(text)


def _normalised(out: Path, sha: str) -> dict[str, str]:
    return {n: (out / n).read_text().replace(sha, "<sha256>") for n in TEXT_FILES}


def _no_marker(*folders: Path) -> None:
    for folder in folders:
        assert not list(folder.rglob(MARKER)), f"an injected command ran in {folder}"


def _build(run_cli, model: Path, target: str, out: Path) -> None:
    code, _, err = run_cli("build", model, "--target", target, "--kernels", "portable",
                           "-o", out)
    assert code == 0, err


def _compare(run_cli, plain: Path, hostile: Path, target: str, tmp_path: Path) -> Path:
    """Build both models; assert the generated code is the same; return the hostile build."""
    import hashlib

    outs = []
    for i, model in enumerate((plain, hostile)):
        out = tmp_path / f"out{i}_{target}"
        _build(run_cli, model, target, out)
        outs.append(out)
        for f in out.iterdir():  # every generated file is printable ASCII
            if f.is_file():
                assert re.fullmatch(r"[\x20-\x7e\n\t]*", f.read_text()), f.name
    shas = [hashlib.sha256(m.read_bytes()).hexdigest() for m in (plain, hostile)]
    assert _preprocessed(outs[0], target) == _preprocessed(outs[1], target)
    assert _normalised(outs[0], shas[0]) == _normalised(outs[1], shas[1])
    return outs[1]


def _make_and_cmake(out: Path) -> None:
    if shutil.which("make"):
        done = subprocess.run(["make", "-C", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    if shutil.which("cmake"):
        subprocess.run(["cmake", "-S", str(out), "-B", str(out / "cmake-build")],
                       capture_output=True, text=True, cwd=out)
    _no_marker(out)


@pytest.mark.parametrize("form", ["qdq", "qoperator"])
@pytest.mark.parametrize("target", ["host", "cortex-m7"])
def test_hostile_onnx_names_reach_no_generated_file(request, run_cli, tmp_path, target,
                                                    form, monkeypatch):
    need_toolchain(target)
    data = request.getfixturevalue(form)
    monkeypatch.chdir(tmp_path)
    plain, hostile = tmp_path / "plain" / "model.onnx", tmp_path / "hostile" / "model.onnx"
    for path, names in ((plain, "plain"), (hostile, HOSTILE_NAMES)):
        path.parent.mkdir()
        path.write_bytes(rename_onnx(data, names))
    out = _compare(run_cli, plain, hostile, target, tmp_path)
    weights = (out / "mnv2_weights.c").read_text()
    assert "touch INJECTED" in weights  # the names are there, harmless
    assert "#include </etc/passwd>" not in weights and "system(" not in weights
    if target == "host":
        _make_and_cmake(out)
        code, stdout, err = run_cli("verify", hostile, "--target", "host", "--kernels",
                                    "portable", "--inputs", "2")
        assert code == 0 and "bit-exact" in stdout, err
    _no_marker(tmp_path)


@pytest.mark.parametrize("target", ["host", "cortex-m7"])
def test_hostile_file_names_reach_no_build_file(run_cli, tmp_path, target, monkeypatch):
    need_toolchain(target)
    monkeypatch.chdir(tmp_path)
    data = consistent_tflite(5, seed=3)
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(data)
    _build(run_cli, plain, target, tmp_path / "plain_out")
    expected = {n: (tmp_path / "plain_out" / n).read_text() for n in TEXT_FILES}
    preprocessed = _preprocessed(tmp_path / "plain_out", target)
    for i, name in enumerate(HOSTILE_FILE_NAMES):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        (folder / name).write_bytes(data)
        base = safe_basename(name)
        assert re.fullmatch(r"[A-Za-z0-9._+][A-Za-z0-9._+-]*", base)
        out = folder / "out"
        _build(run_cli, folder / name, target, out)
        assert {n: (out / n).read_text().replace(base, "plain.tflite")
                for n in TEXT_FILES} == expected, name
        assert _preprocessed(out, target) == preprocessed
        if target == "host" and i < 2:
            _make_and_cmake(out)
    _no_marker(tmp_path)


def test_hostile_tflite_tensor_names_change_no_generated_code(run_cli, tmp_path):
    graph = consistent_model(4, seed=4)
    renamed = {n: Tensor(f"{HOSTILE_NAMES[i % 11]}{i}", t.shape, t.dtype, t.quant, t.data)
               for i, (n, t) in enumerate(graph.tensors.items())}
    new = {n: t.name for n, t in renamed.items()}
    ops = tuple(type(op)(op.kind, op.name, tuple(new[x] for x in op.inputs),
                         tuple(new[x] for x in op.outputs), op.attrs, op.source_index)
                for op in graph.ops)
    hostile_graph = graph.replace(tensors={t.name: t for t in renamed.values()}, ops=ops,
                                  inputs=tuple(new[x] for x in graph.inputs),
                                  outputs=tuple(new[x] for x in graph.outputs))
    plain, hostile = tmp_path / "a" / "m.tflite", tmp_path / "b" / "m.tflite"
    for path, g in ((plain, graph), (hostile, hostile_graph)):
        path.parent.mkdir()
        path.write_bytes(write_tflite(g))
    _compare(run_cli, plain, hostile, "host", tmp_path)
    code, out, err = run_cli("inspect", hostile)
    assert code == 0 and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out + err)


@pytest.mark.parametrize("code", [b"My\nerror: forged\x1b[31m", b"bad\xff\xfe", b"X" * 10_000])
def test_custom_op_codes_are_quoted_in_one_short_line(run_cli, tmp_path, code):
    path = tmp_path / "custom.tflite"
    path.write_bytes(custom_op_tflite(code))
    status, out, err = run_cli("inspect", path)
    lines = err.splitlines()
    assert status == 2 and len(lines) == 2 and lines[1].startswith("hint: ")
    assert lines[0].startswith("error: ") and "is not supported" in lines[0]
    assert not re.search(r"[\x00-\x1f\x7f]", lines[0]) and len(lines[0]) < 300
    assert quoted(code) in lines[0]


def test_hostile_onnx_op_type_is_quoted(qdq, run_cli, tmp_path):
    import onnx

    model = onnx.load_model_from_string(qdq)
    model.graph.node[3].op_type = "Evil\nerror: forged\x1b[0m" + "Z" * 5000
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    status, _, err = run_cli("inspect", path)
    lines = err.splitlines()
    assert status == 2 and len(lines) == 2 and len(lines[0]) < 400
    assert "\\x1b" not in lines[0] and "\x1b" not in lines[0] and "forged" in lines[0]


def test_verify_keeps_its_harness_in_a_hostile_folder(run_cli, tmp_path):
    need_toolchain("host")
    model = tmp_path / "m.tflite"
    model.write_bytes(consistent_tflite(3, seed=5))
    keep = tmp_path / 'k"ep\\ ??/ $(x) caf\u00e9'
    keep.parent.mkdir()  # a --keep folder's parent must exist (the folder rules of build -o)
    code, out, err = run_cli("verify", model, "--target", "host", "--kernels", "portable",
                             "--inputs", "1", "--keep", keep)
    assert code == 0 and "bit-exact" in out, err


def test_text_helpers_emit_nothing_that_means_something():
    for name in (*HOSTILE_NAMES, *HOSTILE_FILE_NAMES):
        comment = comment_text(name)
        assert re.fullmatch(r"[A-Za-z0-9 ._,:;()+=@%/>-]*", comment) and len(comment) <= 80
        assert "*/" not in comment and "/*" not in comment
        assert re.fullmatch(r"[A-Za-z0-9._+][A-Za-z0-9._+-]*", safe_basename(name))
    literal = c_string('a"b\\c\n??/\u00e9')
    assert literal == '"a\\042b\\134c\\012\\077\\077/\\303\\251"'
    assert quoted("x\n\x1b[31m" + "y" * 200).startswith("'x[31myyy") and \
        len(quoted("y" * 200)) == 82
