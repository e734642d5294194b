"""Helpers for code generation tests: logits graphs and toolchain skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnv2gen.ir import Graph, OpKind
from mnv2gen.toolchain import missing_tools


def logits_graph(graph: Graph) -> Graph:
    """Return `graph` ending before its final SOFTMAX (and DEQUANTIZE): the logits vary
    with the input where softmax outputs saturate, so comparing them catches more."""
    ops = list(graph.ops)
    while ops and ops[-1].kind in (OpKind.SOFTMAX, OpKind.DEQUANTIZE, OpKind.RESHAPE):
        ops.pop()
    if len(ops) == len(graph.ops):
        return graph
    out = ops[-1].outputs[0]
    kept = {n for op in ops for n in (*op.inputs, *op.outputs)} | set(graph.inputs)
    return graph.replace(ops=tuple(ops), outputs=(out,),
                         tensors={n: t for n, t in graph.tensors.items() if n in kept})


def need_toolchain(target: str) -> None:
    """Skip the test when the target's compiler or QEMU is missing."""
    missing = missing_tools(target)
    if missing:
        pytest.skip(f"{target} needs {', '.join(missing)} (apt-get install gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi qemu-system-arm)")


def cmsis_nn_path() -> str:
    """Return CMSIS_NN_PATH or skip: CMSIS-NN is not redistributable, the user brings it."""
    path = os.environ.get("CMSIS_NN_PATH", "")
    if not path:
        pytest.skip("CMSIS_NN_PATH is not set: the CMSIS-NN backend tier needs a local "
                    "CMSIS-NN v7 checkout")
    return path


def check_golden(compiled, golden: Path, files: tuple[str, ...], tmp_path: Path,
                 update: bool) -> Path:
    """Write the library of `compiled` twice, require identical bytes, rewrite `golden`
    when `update`, then require `files` and the weights' sha256 to equal the golden copy;
    return the folder of the first write."""
    import hashlib

    from mnv2gen.pipeline import write_library

    a, b = tmp_path / "a", tmp_path / "b"
    write_library(compiled, a, compile_it=False)
    write_library(compiled, b, compile_it=False)
    for f in sorted(p.name for p in a.iterdir()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    weights_sha = hashlib.sha256((a / "mnv2_weights.c").read_bytes()).hexdigest()
    if update:
        golden.mkdir(parents=True, exist_ok=True)
        for f in files:
            (golden / f).write_bytes((a / f).read_bytes())
        (golden / "mnv2_weights.c.sha256").write_text(weights_sha + "\n")
    for f in files:
        assert (a / f).read_text() == (golden / f).read_text(), \
            f"{f} changed: review it and rerun with --update-golden"
    assert (golden / "mnv2_weights.c.sha256").read_text().strip() == weights_sha
    return a
