"""The plain-text report `estimate` prints on the terminal."""

from __future__ import annotations

import textwrap

from mnv2gen.errors import shown
from mnv2gen.estimate.formats import (
    VERDICTS,
    caveat_numbers,
    count,
    instructions,
    latency,
    marks,
    signed,
)


def _describe(c: dict) -> str:
    shape = "x".join(str(d) for d in c["input_shape"][1:])
    if c["source"] == "model-free":
        what = f"model-free {c['arch']} alpha {c['alpha']:g}, {c['classes']} classes"
    else:
        what = f"model file {c['model']}"
    return f"{shown(c['name'])}: {what}, input {shape}, {c['macs']:,} MACs"


def _target_rows(c: dict) -> list[str]:
    mode = c["targets"][0]["input_mode"] if c["targets"] else ""
    lines = [f"  {'target':<11} {'kernel set':<10} {'layer B':>10} {'resident B':>10} "
             f"{'streamed B':>10} {'const B':>10} {'code B':>9}  {'flash B':>10}  "
             f"instructions ({mode})"]
    for t in c["targets"]:
        code = "-" if t["code_bytes"] is None else (
            f"{t['code_bytes']:,}{'' if t['code_bytes_source'].startswith('measured') else '*'}")
        flash = "-" if t["flash_bytes"] is None else f"{t['flash_bytes']:,}"
        lines.append(f"  {t['target']:<11} {t['kernel_set']:<10} {t['layer_by_layer_bytes']:>10,} "
                     f"{t['resident_plan_bytes']:>10,} {count(t['streamed_plan_bytes']):>10} "
                     f"{t['const_bytes']:>10,} {code:>9}  {flash:>10}  {instructions(t)}")
        error = (t.get("measured") or {}).get("error")
        if error:
            lines.append(f"    measurement on {t['target']} failed: {error}")
        elif t["instructions"] is None and not (t.get("measured") or {}).get("instructions"):
            lines.append(f"    {t['instructions_source']}")
    return lines


def _part_rows(c: dict, caveats: dict[str, int]) -> list[str]:
    if not c["parts"]:
        return ["  parts: none of the catalogue's parts uses these targets"]
    lines = [f"  {'part':<18} {'core':<11} {'RAM avail B':>11} {'layer margin':>13} "
             f"{'resident mrg':>12} {'streamed mrg':>12} {'flash margin':>13}  "
             f"{'resident':<10} {'streamed':<10} latency >="]
    for p in c["parts"]:
        streamed = "-" if p["streamed_margin_bytes"] is None else \
            signed(p["streamed_margin_bytes"])
        margins = (f"{signed(p['layer_margin_bytes']):>13} "
                   f"{signed(p['plan_margin_bytes']):>12} {streamed:>12} "
                   f"{signed(p['flash_margin_bytes']):>13}")
        lines.append(f"  {p['part']:<18} {p['core']:<11} {p['ram_available_bytes']:>11,} "
                     f"{margins}  {VERDICTS[p['fits']]:<10} "
                     f"{VERDICTS.get(p['fits_streamed'], p['fits_streamed']):<10} "
                     f"{' '.join(filter(None, (latency(p['latency_ms']), marks(p, caveats))))}")
    return lines


def _caveat_lines(caveats: dict[str, int]) -> list[str]:
    if not caveats:
        return []
    lines = ["latency caveats (the [n] marks beside a part's latency):"]
    for text, number in caveats.items():
        lines += textwrap.wrap(text, 100, initial_indent=f"[{number}] ",
                               subsequent_indent=" " * (len(str(number)) + 3))
    return lines


def _backends(report: dict) -> str:
    """Return which kernels the report prices: the --kernels choice, or per target."""
    if report["kernels"] != "default":
        return f"{report['kernels']} kernels"
    used: dict[str, list[str]] = {}
    for t in (report["configurations"] or [{"targets": []}])[0]["targets"]:
        used.setdefault(t["kernels"], []).append(t["target"])
    if len(used) <= 1:
        return f"{next(iter(used), 'generated')} kernels"
    return "; ".join(f"{k} kernels ({', '.join(names)})" for k, names in used.items()) + \
        " [default: generated where calibrated],"


def render(report: dict) -> str:
    """Return the report as text: per configuration the targets, then the parts."""
    lines = [f"mnv2gen estimate: {_backends(report)} on {', '.join(report['targets'])}"]
    caveats = caveat_numbers(report)
    for c in report["configurations"]:
        lines += ["", _describe(c), *_target_rows(c), *_part_rows(c, caveats)]
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
        *_caveat_lines(caveats),
    ]
    return "\n".join(lines)
