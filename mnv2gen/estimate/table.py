"""The plain-text report `estimate` prints on the terminal."""

from __future__ import annotations

_VERDICTS = {"fits": "fits", "plan-only": "plan only", "no-flash": "no (flash)", "no": "no (RAM)"}


def _millions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.1f} M"


def _signed(n: int) -> str:
    return f"{n:+,}"


def _describe(c: dict) -> str:
    shape = "x".join(str(d) for d in c["input_shape"][1:])
    if c["source"] == "model-free":
        what = f"model-free {c['arch']} alpha {c['alpha']:g}, {c['classes']} classes"
    else:
        what = f"model file {c['model']}"
    return f"{c['name']}: {what}, input {shape}, {c['macs']:,} MACs"


def _instructions(t: dict) -> str:
    measured = (t.get("measured") or {})
    if measured.get("instructions"):
        exact = "" if measured.get("bit_exact") else ", NOT bit-exact"
        return f"{_millions(measured['instructions'])} measured{exact}"
    if measured.get("error"):
        return f"{_millions(t['instructions'])} est. (measure failed)"
    if t["instructions"] is None:
        return "- (no calibration)"
    return f"{_millions(t['instructions'])} est. ±{t['instructions_error_pct']:g} %"


def _target_rows(c: dict) -> list[str]:
    lines = [f"  {'target':<11} {'kernel set':<10} {'layer B':>10} {'resident B':>10} "
             f"{'streamed B':>10} {'const B':>10} {'code B':>9}  {'flash B':>10}  "
             f"instructions ({c['targets'][0]['input_mode'] if c['targets'] else ''})"]
    for t in c["targets"]:
        code = "-" if t["code_bytes"] is None else (
            f"{t['code_bytes']:,}{'' if t['code_bytes_source'].startswith('measured') else '*'}")
        flash = "-" if t["flash_bytes"] is None else f"{t['flash_bytes']:,}"
        streamed = "-" if t["streamed_plan_bytes"] is None else f"{t['streamed_plan_bytes']:,}"
        lines.append(f"  {t['target']:<11} {t['kernel_set']:<10} {t['layer_by_layer_bytes']:>10,} "
                     f"{t['resident_plan_bytes']:>10,} {streamed:>10} {t['const_bytes']:>10,} "
                     f"{code:>9}  {flash:>10}  {_instructions(t)}")
        error = (t.get("measured") or {}).get("error")
        if error:
            lines.append(f"    measurement on {t['target']} failed: {error}")
    return lines


def _part_rows(c: dict) -> list[str]:
    if not c["parts"]:
        return ["  parts: none of the catalogue's parts uses these targets"]
    lines = [f"  {'part':<18} {'core':<11} {'RAM avail B':>11} {'layer margin':>13} "
             f"{'resident mrg':>12} {'streamed mrg':>12} {'flash margin':>13}  "
             f"{'resident':<10} {'streamed':<10} latency >="]
    for p in c["parts"]:
        latency = "-" if p["latency_ms"] is None else f"{p['latency_ms']:,.1f} ms"
        streamed = "-" if p["streamed_margin_bytes"] is None else \
            _signed(p["streamed_margin_bytes"])
        margins = (f"{_signed(p['layer_margin_bytes']):>13} "
                   f"{_signed(p['plan_margin_bytes']):>12} {streamed:>12} "
                   f"{_signed(p['flash_margin_bytes']):>13}")
        lines.append(f"  {p['part']:<18} {p['core']:<11} {p['ram_available_bytes']:>11,} "
                     f"{margins}  {_VERDICTS[p['fits']]:<10} "
                     f"{_VERDICTS.get(p['fits_streamed'], p['fits_streamed']):<10} {latency}")
    return lines


def render(report: dict) -> str:
    """Return the report as text: per configuration the targets, then the parts."""
    lines = [f"mnv2gen estimate: {report['kernels']} kernels on {', '.join(report['targets'])}"]
    for c in report["configurations"]:
        lines += ["", _describe(c), *_target_rows(c), *_part_rows(c)]
        plan_only = ", ".join(c["fits_with_plan_only"])
        if plan_only:
            lines.append(f"  fits only with mnv2gen's plan (not layer by layer): {plan_only}")
        streamed_only = ", ".join(c["fits_only_streamed"])
        if streamed_only:
            lines.append(f"  fits only with the input streamed row by row: {streamed_only}")
    lines += [
        "",
        "layer B / resident B / streamed B: arena bytes of the layer-by-layer schedule / of "
        "mnv2gen's plan with the whole input in the arena / with the input streamed row by "
        "row (mnv2_feed_rows; only a ring of rows in the arena); input and output included. "
        "flash B = const B (weights, biases, requantisation tables) + code B (* = from the "
        "code-size table: no toolchain or CMSIS-NN here).",
        f"RAM avail: the part's largest contiguous SRAM block minus "
        f"{report['ram_allowance_bytes']:,} B for stack and application (--ram-allowance); "
        "margins are avail - arena and flash - flash B; verdicts for the resident and the "
        "streamed input.",
        "instructions: " + report["instructions_note"] + "; est. ± = the estimate's largest "
        "error measured on the shared real models.",
        "latency >= instructions / clock: an optimistic lower bound, not a cycle count.",
    ]
    return "\n".join(lines)
