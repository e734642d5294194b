"""Seeded fuzzing of every command a model file reaches (the CI share; benchmarks/fuzz.py
runs thousands).

About 250 mutants of small synthesized models (consistent miniature MobileNets, `mnv2gen
zoo`'s tiniest configurations, a QDQ ONNX model) and a few of the shared models go
through inspect, plan and `verify --target host` (generate, compile with
warnings-as-errors, run, compare bit for bit). Every mutant must end in exit 0 or in
exactly one `error:` and one `hint:` line; no traceback, exit 1 or 3, signal, timeout or
control character. Two worker processes share the work.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import re

import pytest
from conftest import SHARED_MODELS
from fuzz_runner import corpus_seeds, judge_output, mutants, run_in_folder

from mnv2gen.toolchain import toolchain_available

SEED = 2024
BIG_SEEDS = ("tflm_person_detect_mbv1_0.25_96_int8", "ei_fomo_balloon_mobilenet_v2_0.35_96_int8",
             "st_nota_mobilenet_v2_0.35_224_flowers_qdq_int8")


@pytest.mark.skipif(not toolchain_available("host"), reason="needs a host C compiler (gcc)")
def test_fuzzed_models_are_refused_in_one_line_or_built_bit_exact(tmp_path):
    shared = SHARED_MODELS if (SHARED_MODELS / "tflite").is_dir() else None
    seeds = corpus_seeds(1.0, tmp_path, shared)
    corpus = list(mutants(seeds, SEED, structural_only=BIG_SEEDS))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        judged = list(pool.map(run_in_folder, corpus, chunksize=4))
    stages = collections.Counter(j.stage for j in judged)
    problems = [(j.name, p) for j in judged for p in j.problems]
    summary = f"{len(judged)} mutants: {dict(stages)}"
    print(summary)
    assert not problems, f"{summary}\n" + "\n".join(f"{n}: {p}" for n, p in problems[:20])
    assert len(judged) >= 200
    assert stages["bit-exact"] >= 30, summary   # valid mutants reached the C and matched
    assert stages["inspect"] >= 60, summary     # broken ones were refused at the door


@pytest.mark.parametrize("args, expected", [
    (["plan", "{model}", "--ram-budget", "nan"], "is not a byte count"),
    (["plan", "{model}", "--ram-budget", "inf"], "is not a byte count"),
    (["plan", "{model}", "--ram-budget", "1e400"], "is not a byte count"),
    (["plan", "{model}", "--ram-budget", "-5"], "is not a byte count"),
    (["run", "{model}", "--seed", "-1"], "Invalid value for '--seed'"),
    (["run", "{model}", "--seed", "99999999999"], "Invalid value for '--seed'"),
    (["verify", "{model}", "--target", "host", "--inputs", "0"], "Invalid value for '--inputs'"),
    (["verify", "{model}", "--target", "host", "--timeout", "0"], "Invalid value"),
    (["zoo", "mobilenet-v2", "--resolution", "1000000", "-o", "{out}"], "out of range"),
    (["inspect", "/dev/zero"], "not a regular file"),
    (["plan", "{model}", "--no-such-option"], "No such option"),
    (["frobnicate"], "No such command"),
    (["build", "{model}", "-o", "{out}"], "Missing option '--target'"),
    (["build", "{model}", "--target", "nonesuch", "-o", "{out}"], "unknown target"),
])
def test_absurd_options_are_one_line_usage_errors(run_cli, tmp_path, args, expected):
    from fuzz_models import consistent_tflite

    model = tmp_path / "m.tflite"
    model.write_bytes(consistent_tflite(2))
    args = [a.format(model=model, out=tmp_path / "out") for a in args]
    code, out, err = run_cli(*args)
    assert code == 2 and not judge_output(args[0], code, out, err), err
    assert expected in err.splitlines()[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", [1, 2, 3])
def test_tiny_inputs_plan_build_and_verify_bit_exact(run_cli, tmp_path, size):
    from fuzz_models import consistent_tflite, family_model

    from mnv2gen.frontend.tflite_writer import write_tflite

    for name, data in ((f"c{size}.tflite", consistent_tflite(size, seed=size)),
                       (f"v2_{size}.tflite", write_tflite(family_model(resolution=size,
                                                                       seed=size)))):
        model = tmp_path / name
        model.write_bytes(data)
        for scheme in ("auto", "layer", "bottleneck"):
            code, out, err = run_cli("plan", model, "--scheme", scheme, "--no-tflm")
            assert code == 0, err
        if toolchain_available("host"):
            code, out, err = run_cli("verify", model, "--target", "host", "--kernels",
                                     "portable", "--inputs", "2")
            assert code == 0 and "bit-exact" in out, err


@pytest.mark.parametrize("height, width", [(100_000, 100_000), (1 << 20, 1 << 20),
                                           (20_000, 20_000)])
def test_absurd_consistent_models_are_refused_quickly_with_numbers(run_cli, tmp_path, height,
                                                                    width):
    import time

    from fuzz_models import consistent_model

    from mnv2gen.frontend.tflite_writer import write_tflite

    model = tmp_path / "huge.tflite"
    model.write_bytes(write_tflite(consistent_model(height, width, head=False)))
    start = time.monotonic()
    for command in (["inspect", model], ["plan", model], ["build", model, "--target", "host",
                                                          "-o", tmp_path / "out"]):
        code, _, err = run_cli(*command)
        assert code == 2 and not judge_output(str(command[0]), code, "", err), err
        assert re.search(r"\d{1,3}(,\d{3})+", err), err  # says how big, with numbers
    assert time.monotonic() - start < 20
    assert not (tmp_path / "out").exists()


def test_concatenation_of_a_differently_quantised_constant_verifies(run_cli, tmp_path):
    """Found by the fuzz: requantize_concat gave a constant a run-time QUANTIZE (exit 3)."""
    import family_builders as fb

    from mnv2gen.frontend.tflite_writer import write_tflite

    graph = fb.concat([(1, 2, 2, 3), (1, 2, 2, 5)], 3, [fb.q(0.05, 0), fb.q(0.05, 0)],
                      fb.q(0.05, 1))
    model = tmp_path / "concat.tflite"
    model.write_bytes(write_tflite(graph))
    code, out, err = run_cli("verify", model, "--target", "host", "--kernels", "portable",
                             "--inputs", "2")
    assert code == 0 and "bit-exact" in out, err
