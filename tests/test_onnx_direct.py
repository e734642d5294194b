"""plan/build/verify read ONNX directly: QDQ as it is, float with the quantize options."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def float_onnx(shared_models):
    path = shared_models / "onnx" / "st_nota_mobilenet_v2_0.35_224_flowers_float.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def test_float_onnx_without_calibration_is_refused_with_a_hint(float_onnx, run_cli):
    code, out, err = run_cli("plan", float_onnx)
    assert code == 2 and "float ONNX model" in err and "--calibrate" in err


def test_float_onnx_plans_and_builds_with_calibration(float_onnx, tmp_path, run_cli):
    code, out, err = run_cli("plan", float_onnx, "--calibrate", "random", "--json")
    assert code == 0, err
    assert json.loads(out)["peak_bytes"] < json.loads(out)["layer_by_layer_bytes"]
    code, out, err = run_cli("build", float_onnx, "--target", "host", "--kernels", "portable",
                             "--calibrate", "random", "-o", tmp_path / "lib")
    assert code == 0, err
    assert "float32 input" in (tmp_path / "lib" / "mnv2_model.h").read_text()


def test_calibration_options_need_calibrate(float_onnx, run_cli):
    code, _, err = run_cli("plan", float_onnx, "--scale", "0.5")
    assert code == 2 and "need --calibrate" in err
