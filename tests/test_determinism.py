"""Same arguments, same bytes on every machine: `zoo` (V2 and V1) and `quantize` run in
subprocesses under different OpenBLAS kernels (OPENBLAS_CORETYPE, checked with
OPENBLAS_VERBOSE=2), thread counts and NumPy SIMD paths, and must write identical files.

OpenBLAS picks its kernels when it is loaded, so every configuration is its own process.
Where NumPy's BLAS cannot switch kernels (not OpenBLAS, or no DYNAMIC_ARCH), threads and
NumPy's own SIMD dispatch still vary.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
CORETYPES = {"x86_64": ("Haswell", "Prescott", "Sandybridge"),
             "aarch64": ("ARMV8", "CORTEXA57", "NEOVERSEN1")}

# One configuration's run: the three commands, then the sha256 of each file and of the
# calibration ranges `quantize` derived (the statistics, before any rounding to int8).
SCRIPT = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np
from mnv2gen.cli import main
from mnv2gen.frontend.calibration import Preprocess, load_samples
from mnv2gen.frontend.onnx_float import translate
from mnv2gen.frontend.onnx_graph import read_onnx_file
from mnv2gen.frontend.ptq import calibrate

work, model, runner = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
commands = {
    "zoo_v2": ["zoo", "mobilenet-v2", "--alpha", "0.35", "--resolution", "32", "--classes", "10"],
    "zoo_v1": ["zoo", "mobilenet-v1", "--alpha", "0.25", "--resolution", "32", "--classes", "10"],
    "quantize": ["quantize", model, "--calibrate", "random", "--float-runner", runner, "--json"],
}
digests = {}
for name, args in commands.items():
    path = work / f"{name}.tflite"
    code = main([*args, "-o", str(path)])
    assert code == 0, (name, code)
    digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
float_model = translate(read_onnx_file(model))
samples = load_samples("random", float_model, Preprocess())
ranges = calibrate(float_model, samples.data)
digests["ranges"] = hashlib.sha256(repr(sorted(ranges.items())).encode()).hexdigest()
print("DIGESTS " + json.dumps(digests))
"""


def _float_onnx(path: Path) -> None:
    """Write a small float ONNX net with wide 1x1 convolutions (long BLAS dot products)."""
    rng = np.random.default_rng(0)

    def weights(*shape, scale=None):
        w = rng.standard_normal(shape).astype(np.float32)
        return w * np.float32(scale or 1 / np.sqrt(np.prod(shape[1:])))

    inits = {"w1": weights(96, 3, 3, 3), "b1": weights(96, scale=0.1),
             "w2": weights(384, 96, 1, 1), "b2": weights(384, scale=0.1),
             "w3": weights(384, 1, 3, 3), "b3": weights(384, scale=0.1),
             "w4": weights(64, 384, 1, 1), "b4": weights(64, scale=0.1),
             "w5": weights(64, 10), "b5": weights(10, scale=0.1)}
    node = helper.make_node
    nodes = [node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("Relu", ["c1"], ["r1"]), node("Conv", ["r1", "w2", "b2"], ["c2"]),
             node("Relu", ["c2"], ["r2"]),
             node("Conv", ["r2", "w3", "b3"], ["c3"], group=384, pads=[1, 1, 1, 1]),
             node("Relu", ["c3"], ["r3"]), node("Conv", ["r3", "w4", "b4"], ["c4"]),
             node("GlobalAveragePool", ["c4"], ["p"]), node("Flatten", ["p"], ["f"]),
             node("Gemm", ["f", "w5", "b5"], ["y"])]
    graph = helper.make_graph(
        nodes, "determinism", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _numpy_dispatch() -> str:
    """Return NumPy's dispatched SIMD targets (to disable them all), or ''."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_dispatch__
        except ImportError:
            return ""
    return " ".join(__cpu_dispatch__)


def _run(config: dict, work: Path, model: Path, runner: str) -> tuple[str | None, dict]:
    """Return (OpenBLAS core reported, digests) of one configuration's subprocess."""
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENBLAS_", "NPY_DISABLE", "OMP_", "MKL_"))}
    env.update(config, OPENBLAS_VERBOSE="2",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(work), str(model), runner],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, (config, done.stderr[-2000:])
    core = re.search(r"^Core: (\S+)", done.stderr, re.M)
    line = next(x for x in done.stdout.splitlines() if x.startswith("DIGESTS "))
    return (core.group(1) if core else None), json.loads(line.removeprefix("DIGESTS "))


def test_zoo_and_quantize_write_the_same_bytes_under_every_blas_kernel_and_thread_count(
        tmp_path):
    coretypes = CORETYPES.get(platform.machine(), ())
    configs = [dict(OPENBLAS_CORETYPE=c, OPENBLAS_NUM_THREADS=str(t))
               for c in coretypes for t in (1, 2)] or \
        [dict(OPENBLAS_NUM_THREADS=str(t)) for t in (1, 2)]
    dispatch = _numpy_dispatch()
    if dispatch:  # NumPy's scalar/baseline loops instead of its AVX2/AVX-512 (or NEON) ones
        configs.append(dict(configs[0], NPY_DISABLE_CPU_FEATURES=dispatch))
    model = tmp_path / "float.onnx"
    _float_onnx(model)
    runners = ["numpy"] * len(configs)
    try:
        import onnxruntime  # noqa: F401

        runners[-1] = "onnxruntime"  # the float runner only reports agreement
    except ImportError:
        pass
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(_run, configs, [tmp_path / f"c{i}" for i in range(len(configs))],
                                [model] * len(configs), runners))
    cores = [core for core, _ in results]
    if coretypes and None not in cores:  # OpenBLAS with DYNAMIC_ARCH: it must really switch
        assert len(set(cores)) >= 2, f"OpenBLAS did not switch kernels: {cores}"
    reference = results[0][1]
    for config, (core, digests) in zip(configs, results, strict=True):
        assert digests == reference, (config, core)
