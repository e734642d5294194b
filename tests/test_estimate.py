"""`mnv2gen estimate`: the acceptance sweep, equality with `plan`/`build`, the catalogue,
the calibration, errors, and one small QEMU measurement."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from mnv2gen.cli import main
from mnv2gen.errors import MnvError
from mnv2gen.estimate import catalogue
from mnv2gen.estimate.calibration import calibration
from mnv2gen.estimate.configs import configurations, parse_bytes, parse_list, parse_targets
from mnv2gen.estimate.memory import const_pool_bytes, plan_memory
from mnv2gen.estimate.standin import standin_graph
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.toolchain import missing_tools

CORTEX_M = ("cortex-m0", "cortex-m3", "cortex-m33", "cortex-m4", "cortex-m55", "cortex-m7",
            "stm32f405")
GENERATED = ("cortex-m3", "cortex-m4", "cortex-m7", "stm32f405")  # calibrated generated kernels
ACCEPTANCE = ("estimate", "--arch", "mobilenet-v2", "--alpha", "0.35,1.0", "--resolution",
              "96,224", "--classes", "1000", "--json")


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def acceptance() -> dict:
    code, out, err = run(*ACCEPTANCE)
    assert code == 0, err
    return json.loads(out)


def test_acceptance_sweep_reports_four_configurations(acceptance):
    configs = acceptance["configurations"]
    assert [(c["alpha"], c["resolution"], c["classes"]) for c in configs] == [
        (0.35, 96, 1000), (0.35, 224, 1000), (1.0, 96, 1000), (1.0, 224, 1000)]
    assert acceptance["targets"] == list(CORTEX_M)
    for c in configs:
        assert c["source"] == "model-free" and c["macs"] > 10_000_000
        assert {t["target"] for t in c["targets"]} == set(CORTEX_M)
        for t in c["targets"]:
            assert 0 < t["lower_bound_bytes"] <= t["plan_bytes"] < t["layer_by_layer_bytes"]
            assert t["flash_bytes"] == t["const_bytes"] + t["code_bytes"]
            assert t["instructions"] > c["macs"], "an estimate per target"
            assert t["instructions_source"] == "estimate"
            assert 0 <= t["instructions_error_pct"] <= 15
        assert set(c["fits"]) | set(c["fits_with_plan_only"]) <= {
            p.name for p in catalogue.load_catalogue()}
        for p in c["parts"]:
            assert p["fits"] in ("fits", "plan-only", "no", "no-flash")
            assert p["latency_ms"] > 0
    small, large = configs[0], configs[3]
    assert "STM32H743" in small["fits"]
    assert small["targets"][0]["plan_bytes"] < 40_000  # 0.35/96: ~30 KiB
    assert large["targets"][0]["layer_by_layer_bytes"] > 1_400_000  # 1.0/224: ~1.4 MiB
    # only mnv2gen's plan brings 1.0/224 into the i.MX RT1062's 768 KiB block
    assert "i.MX RT1062" in large["fits_with_plan_only"]


def test_acceptance_sweep_equals_plan_on_the_synthesized_model(acceptance, tmp_path):
    """Model-free figures equal `mnv2gen plan --json` on `mnv2gen zoo`'s model."""
    model = tmp_path / "m.tflite"
    assert run("zoo", "mobilenet-v2", "--alpha", "0.35", "--resolution", "96", "--classes",
               "1000", "-o", model)[0] == 0
    code, out, _ = run("plan", model, "--json")
    assert code == 0
    planned = json.loads(out)
    entry = acceptance["configurations"][0]["targets"][0]
    assert entry["plan_bytes"] == planned["peak_bytes"]
    assert entry["layer_by_layer_bytes"] == planned["layer_by_layer_bytes"]
    assert entry["lower_bound_bytes"] == planned["lower_bound_bytes"]


@pytest.mark.parametrize("target, kernel_set", [("cortex-m7", "cmsis-dsp"),
                                                ("cortex-m55", "cmsis-mve")])
def test_cmsis_kernel_set_plan_equals_plan_command(tmp_path, target, kernel_set):
    model = tmp_path / "m.tflite"
    run("zoo", "mobilenet-v1", "--alpha", "0.25", "--resolution", "64", "--classes", "2",
        "-o", model)
    code, out, err = run("estimate", model, "--target", target, "--kernels", "cmsis-nn",
                         "--code-table", "--json", "--quiet")
    assert code == 0, err
    entry = json.loads(out)["configurations"][0]["targets"][0]
    planned = json.loads(run("plan", model, "--kernel-set", kernel_set, "--json")[1])
    assert entry["kernel_set"] == kernel_set
    assert (entry["plan_bytes"], entry["layer_by_layer_bytes"]) == (
        planned["peak_bytes"], planned["layer_by_layer_bytes"])


def test_standin_has_the_synthesized_structure_and_const_bytes(tmp_path):
    from mnv2gen.pipeline import compile_graph, write_library
    from mnv2gen.zoo import synthesize

    real = synthesize("mobilenet-v2", 0.35, 64, 10)
    stand_in = standin_graph("mobilenet-v2", 0.35, 64, 10)
    assert [(o.kind, o.name) for o in real.ops] == [(o.kind, o.name) for o in stand_in.ops]
    for kernel_set in ("portable", "cmsis-dsp"):
        a, b = (plan_memory(integer_core(g), kernel_set) for g in (real, stand_in))
        assert (a.plan.peak_bytes, a.baseline.peak_bytes, a.const_bytes, a.macs) == (
            b.plan.peak_bytes, b.baseline.peak_bytes, b.const_bytes, b.macs)
    compiled = compile_graph(real, "cortex-m7", "portable")
    generated = write_library(compiled, tmp_path / "lib", compile_it=False)
    assert const_pool_bytes(compiled.plan) == generated.const_bytes


def test_code_bytes_fall_back_to_the_labelled_table(monkeypatch):
    from mnv2gen.estimate import run as run_module

    monkeypatch.setattr(run_module, "can_measure", lambda target: False)
    code, out, _ = run("estimate", "--arch", "mobilenet-v2", "--alpha", "0.35", "--resolution",
                       "64", "--target", "cortex-m4", "--json", "--quiet")
    assert code == 0
    entry = json.loads(out)["configurations"][0]["targets"][0]
    assert entry["code_bytes_source"].startswith("table (targets/calibration.toml")
    assert 5_000 < entry["code_bytes"] < 100_000


def test_terminal_table_lists_targets_parts_and_notes():
    code, out, _ = run("estimate", "--arch", "mobilenet-v1", "--alpha", "0.25", "--resolution",
                       "96", "--classes", "2", "--target", "cortex-m4,stm32f405",
                       "--code-table", "--ram-allowance", "16k")
    assert code == 0
    assert "mobilenet_v1_0.25_96: model-free mobilenet-v1 alpha 0.25, 2 classes" in out
    assert "STM32F405" in out and "nRF52840" in out and "STM32H743" not in out
    assert "16,384 B for stack and application" in out
    assert "instruction counts, not cycles" in out


@pytest.mark.parametrize("args, message", [
    (("--arch", "mobilenet-v2", "--alpha", "0.35,x"),
     "--alpha '0.35,x' is not a comma-separated list of numbers"),
    (("--arch", "mobilenet-v2", "--alpha", "0.35,9"), "alpha 9.0 is out of range"),
    (("--arch", "mobilenet-v2", "--resolution", "96,abc"),
     "--resolution '96,abc' is not a comma-separated list of integers"),
    (("--arch", "mobilenet-v3",), "unknown architecture 'mobilenet-v3'"),
    (("--arch", "mobilenet-v2", "--target", "cortex-m99"), "unknown target 'cortex-m99'"),
    (("--arch", "mobilenet-v2", "--target", "host"), "target host is the host"),
    (("--arch", "mobilenet-v2", "--kernels", "fast"), "--kernels 'fast' is not a kernel"),
    (("--arch", "mobilenet-v2", "--ram-allowance", "lots"), "--ram-allowance 'lots' is not"),
    ((), "nothing to estimate"),
])
def test_usage_errors_are_one_line_with_exit_2(args, message):
    code, out, err = run("estimate", *args, "--quiet")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert all(line.startswith(("error: ", "hint: ")) for line in lines)
    assert "Traceback" not in err and out == ""


def test_model_file_with_arch_is_a_usage_error(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not used")
    code, _, err = run("estimate", model, "--arch", "mobilenet-v2", "--quiet")
    assert code == 2 and err.startswith("error: give a model file or a model-free description")


def test_parsers():
    assert parse_list("--alpha", "0.35, 0.5", float) == (0.35, 0.5)
    assert parse_list("--alpha", None, float) is None
    with pytest.raises(MnvError, match="twice"):
        parse_list("--resolution", "96,96", int)
    assert parse_bytes("--ram-allowance", "8k") == 8192
    assert parse_bytes("--ram-allowance", "1.5MiB") == 1572864
    assert parse_targets(("cortex-m7,cortex-m4", "cortex-m7")) == ("cortex-m7", "cortex-m4")
    assert parse_targets(()) == CORTEX_M
    sweep = configurations(None, "mobilenet-v2", (0.35, 0.5), (96,), (2, 1000))
    assert [c.name for c in sweep] == [
        "mobilenet_v2_0.35_96_2cls", "mobilenet_v2_0.35_96_1000cls",
        "mobilenet_v2_0.5_96_2cls", "mobilenet_v2_0.5_96_1000cls"]


def test_catalogue_regions_and_fits():
    parts = {p.name: p for p in catalogue.load_catalogue()}
    assert {"STM32F405", "STM32F446", "STM32F746", "STM32H743", "nRF52840", "nRF5340",
            "RP2040", "RP2350", "i.MX RT1062", "SAMD51", "Apollo4 Blue Plus",
            "Alif Ensemble E3"} <= set(parts)
    # adjacent blocks merge: DTCM + SRAM1 + SRAM2 of the F746 are one 320 KiB region
    assert parts["STM32F746"].largest_region == ("DTCM+SRAM1+SRAM2", 320 * 1024)
    assert parts["STM32F405"].largest_region == ("SRAM1+SRAM2", 128 * 1024)
    assert parts["STM32H743"].largest_region == ("AXI SRAM", 512 * 1024)
    assert parts["RP2040"].largest_region[1] == 264 * 1024
    assert parts["i.MX RT1062"].largest_region[1] == 768 * 1024
    for p in parts.values():
        assert p.source and p.clock_mhz > 0 and p.flash_bytes > 0
        assert p.target in CORTEX_M
    f405 = parts["STM32F405"]  # 131,072 - 8,192 = 122,880 bytes available
    assert catalogue.fit(f405, 138_240, 30_720, 500_000).verdict == "plan-only"
    fit = catalogue.fit(f405, 100_000, 30_720, 2_000_000)
    assert (fit.verdict, fit.layer_margin_bytes, fit.flash_margin_bytes) == (
        "no-flash", 22_880, 1_048_576 - 2_000_000)
    assert catalogue.fit(f405, 200_000, 122_881, 1).verdict == "no"
    assert catalogue.fit(f405, 122_880, 122_880, 1_048_576).verdict == "fits"


def test_catalogue_maps_cores_to_their_own_targets():
    from mnv2gen.toolchain import load_target

    parts = {p.name: p for p in catalogue.load_catalogue()}
    assert (parts["RP2040"].target, parts["nRF5340"].target, parts["RP2350"].target) == (
        "cortex-m0", "cortex-m33", "cortex-m33")
    borrowed = {name for name, p in parts.items()
                if catalogue.borrows_calibration(p, load_target(p.target).cpu)}
    assert borrowed == {"RP2040"}  # the only core without its own calibration: Cortex-M0+
    for name in borrowed:  # every borrowed calibration says what it is worth
        assert "cortex-m0 calibration" in parts[name].calibration_note
    assert catalogue.core_name("cortex-m0plus") == "Cortex-M0+"
    assert not catalogue.borrows_calibration(parts["STM32F405"], "cortex-m4")  # M4F is an M4


def test_borrowed_calibration_and_latency_caveats_are_shown():
    args = ("estimate", "--arch", "mobilenet-v2", "--alpha", "0.35", "--resolution", "96",
            "--classes", "10", "--target", "cortex-m0,cortex-m7", "--code-table", "--quiet")
    code, out, err = run(*args)
    assert code == 0, err
    rp2040 = next(line for line in out.splitlines() if line.strip().startswith("RP2040"))
    assert rp2040.rstrip().endswith("ms [1,2]")  # the latency carries both caveat marks
    text = " ".join(out.split())
    assert "[1] Cortex-M0+ timed with the cortex-m0 calibration (a Cortex-M0): the " \
           "instruction estimate stands" in text
    assert "[2] the weights are read from external QSPI flash" in text
    data = json.loads(run(*args, "--json")[1])
    parts = {p["part"]: p for p in data["configurations"][0]["parts"]}
    assert parts["RP2040"]["calibration_borrowed"] and parts["RP2040"]["calibration_core"] == \
        "Cortex-M0"
    assert len(parts["RP2040"]["latency_caveats"]) == 2
    assert not parts["STM32H743"]["latency_caveats"]
    assert not parts["i.MX RT1062"]["calibration_borrowed"]


@pytest.mark.parametrize("target, kernels", [
    *((t, k) for t in CORTEX_M for k in ("portable", "cmsis-nn")),
    *((t, "generated") for t in GENERATED)])
def test_every_cortex_m_target_is_calibrated(target, kernels):
    calib = calibration(target, kernels)
    assert calib is not None and calib.measured
    assert calib.max_shared_error_pct is not None and calib.max_shared_error_pct <= 15
    assert calib.instructions and calib.code_bytes


def test_estimate_prices_the_generated_kernels_where_calibrated():
    """Without --kernels: generated where calibrated (no --measure needed), else portable;
    --kernels generated on a target without the table says which targets have one."""
    code, out, err = run("estimate", "--arch", "mobilenet-v1", "--alpha", "0.25",
                         "--resolution", "64", "--classes", "2", "--target",
                         "cortex-m7,cortex-m0", "--code-table", "--json", "--quiet")
    assert code == 0, err
    report = json.loads(out)
    m7, m0 = report["configurations"][0]["targets"]
    assert report["kernels"] == "default"
    assert (m7["kernels"], m7["kernel_set"], m0["kernels"]) == ("generated", "generated",
                                                                "portable")
    assert m7["instructions"] > 0 and m7["instructions_source"] == "estimate"
    assert m7["instructions_error_pct"] == calibration("cortex-m7",
                                                       "generated").max_shared_error_pct
    code, out, err = run("estimate", "--arch", "mobilenet-v1", "--alpha", "0.25",
                         "--resolution", "64", "--classes", "2", "--target", "cortex-m0",
                         "--kernels", "generated", "--code-table", "--quiet")
    assert code == 0, err
    note = next(line.strip() for line in out.splitlines() if "no calibration of" in line)
    assert note.startswith("no calibration of the generated kernels for cortex-m0 "
                           f"(calibrated for: {', '.join(GENERATED)})"), note
    assert "--measure" in note and "--kernels cmsis-nn or portable" in note


@pytest.mark.qemu
@pytest.mark.skipif(bool(missing_tools("cortex-m7")),
                    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm")
def test_measure_runs_the_model_in_qemu():
    code, out, err = run("estimate", "--arch", "mobilenet-v1", "--alpha", "0.25",
                         "--resolution", "32", "--classes", "2", "--target", "cortex-m7",
                         "--measure", "--json", "--quiet")
    assert code == 0, err
    entry = json.loads(out)["configurations"][0]["targets"][0]
    measured = entry["measured"]
    assert measured["bit_exact"] and measured["instructions"] > 0
    assert abs(entry["instructions"] / measured["instructions"] - 1) < 0.25
    # the test program holds the library plus the harness (startup, semihosting, printf)
    assert entry["flash_bytes"] <= measured["program_regions"]["FLASH"]


@pytest.mark.qemu
@pytest.mark.skipif(bool(missing_tools("cortex-m7")),
                    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm")
def test_generated_estimate_is_within_its_stored_error_of_qemu(shared_model):
    """The shipped generated-kernel table, on a small shared model it was checked on: the
    estimate is within the table's stored error of the QEMU count."""
    model = shared_model("ei_fomo_balloon")
    code, out, err = run("estimate", model, "--target", "cortex-m7", "--measure", "--json",
                         "--quiet")
    assert code == 0, err
    entry = json.loads(out)["configurations"][0]["targets"][0]
    measured = entry["measured"]
    assert entry["kernels"] == "generated" and measured["bit_exact"]
    error = 100 * (entry["instructions"] / measured["instructions"] - 1)
    calib = calibration("cortex-m7", "generated")
    assert abs(error) <= calib.max_shared_error_pct, (error, calib.measured)
