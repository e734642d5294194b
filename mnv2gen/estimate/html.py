"""The `--html` report: one self-contained page (inline CSS and SVG, no network, no files)."""

from __future__ import annotations

from mnv2gen.estimate.charts import arena_svg, design_space_svg, timeline_svg
from mnv2gen.estimate.svg import esc, human_bytes, human_count

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;
color:#222;max-width:1000px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.fits{color:#1a7f37}.plan-only{color:#2b6cb0;font-weight:600}
.no,.no-flash{color:#b33}.note{color:#555;font-size:13px}details{margin:12px 0}
summary{cursor:pointer;font-weight:600}svg.chart{display:block;margin:8px 0;max-width:100%;
height:auto}
"""
# Opens a configuration from the summary links, and records each chart's rendered size in
# data-rendered (and how many charts have a size in body[data-charts-rendered]): a layout
# check the tests read from a headless browser.
_SCRIPT = """
function openHash(){var d=document.getElementById(location.hash.slice(1));
if(d&&d.tagName==="DETAILS"){d.open=true;}}
window.addEventListener("hashchange",openHash);
document.addEventListener("DOMContentLoaded",function(){openHash();var n=0;
document.querySelectorAll("svg.chart").forEach(function(s){var r=s.getBoundingClientRect();
if(r.width>0&&r.height>0){n++;}
s.setAttribute("data-rendered",Math.round(r.width)+"x"+Math.round(r.height));});
document.body.setAttribute("data-charts-rendered",String(n));});
"""
_VERDICT = {"fits": "fits", "plan-only": "plan only", "no-flash": "no (flash)", "no": "no (RAM)"}


def _n(v) -> str:
    return "-" if v is None else f"{v:,}"


def _instructions(t: dict) -> str:
    measured = t.get("measured") or {}
    if measured.get("instructions"):
        return f"{measured['instructions']:,} measured"
    if t["instructions"] is None:
        return "no calibration"
    return f"{t['instructions']:,} estimate (±{t['instructions_error_pct']:g} %)"


def _summary(report: dict) -> str:
    rows = ["<table><tr><th class=l>configuration</th><th>MACs</th><th>target</th>"
            "<th>layer-by-layer arena</th><th>plan arena</th><th>flash</th>"
            "<th>instructions</th><th class=l>fits (plan only)</th></tr>"]
    for index, c in enumerate(report["configurations"]):
        for i, t in enumerate(c["targets"]):
            parts = [p for p in c["parts"] if p["target"] == t["target"]]
            fits = ", ".join(p["part"] for p in parts if p["fits"] == "fits")
            only = ", ".join(p["part"] for p in parts if p["fits"] == "plan-only")
            first = (f'<td class=l rowspan="{len(c["targets"])}"><a href="#config-{index}">'
                     f'{esc(c["name"])}</a></td>'
                     f'<td rowspan="{len(c["targets"])}">{human_count(c["macs"])}</td>'
                     if i == 0 else "")
            rows.append(f"<tr>{first}<td class=l>{esc(t['target'])}</td>"
                        f"<td>{_n(t['layer_by_layer_bytes'])}</td><td>{_n(t['plan_bytes'])}</td>"
                        f"<td>{_n(t['flash_bytes'])}</td><td>{_instructions(t)}</td>"
                        f"<td class=l>{esc(fits) or '-'}"
                        f"{f' <span class=plan-only>({esc(only)})</span>' if only else ''}"
                        "</td></tr>")
    return "".join(rows) + "</table>"


def _targets(c: dict) -> str:
    rows = ["<table><tr><th class=l>target</th><th class=l>kernel set</th><th>layer B</th>"
            "<th>plan B</th><th>lower bound B</th><th>const B</th><th>code B</th>"
            "<th class=l>code from</th><th>flash B</th><th>instructions</th></tr>"]
    for t in c["targets"]:
        rows.append(f"<tr><td class=l>{esc(t['target'])}</td><td class=l>{esc(t['kernel_set'])}"
                    f"</td><td>{_n(t['layer_by_layer_bytes'])}</td><td>{_n(t['plan_bytes'])}</td>"
                    f"<td>{_n(t['lower_bound_bytes'])}</td><td>{_n(t['const_bytes'])}</td>"
                    f"<td>{_n(t['code_bytes'])}</td><td class=l>{esc(t['code_bytes_source'])}"
                    f"</td><td>{_n(t['flash_bytes'])}</td><td>{_instructions(t)}</td></tr>")
    return "".join(rows) + "</table>"


def _parts(c: dict) -> str:
    if not c["parts"]:
        return "<p class=note>No catalogue part uses the estimated targets.</p>"
    rows = ["<table><tr><th class=l>part</th><th class=l>core</th><th>MHz</th>"
            "<th class=l>largest SRAM block</th><th>available B</th><th>layer margin</th>"
            "<th>plan margin</th><th>flash margin</th><th class=l>verdict</th>"
            "<th>latency &ge; ms</th></tr>"]
    for p in c["parts"]:
        rows.append(f"<tr><td class=l>{esc(p['part'])}</td><td class=l>{esc(p['core'])}</td>"
                    f"<td>{p['clock_mhz']:g}</td><td class=l>{esc(p['ram_region'])}</td>"
                    f"<td>{p['ram_available_bytes']:,}</td><td>{p['layer_margin_bytes']:+,}</td>"
                    f"<td>{p['plan_margin_bytes']:+,}</td><td>{p['flash_margin_bytes']:+,}</td>"
                    f"<td class='l {p['fits']}'>{_VERDICT[p['fits']]}</td>"
                    f"<td>{'-' if p['latency_ms'] is None else p['latency_ms']}</td></tr>")
    return "".join(rows) + "</table>"


def _configuration(c: dict, index: int) -> str:
    kernel_set, memory = next(iter(c["memory"].items()))
    io = set(memory["io_buffers"])
    other = "".join(
        f"<p class=note>Kernel set {esc(k)}: layer by layer {m['layer_by_layer_bytes']:,} B, "
        f"plan {m['plan_bytes']:,} B (charts show {esc(kernel_set)}).</p>"
        for k, m in list(c["memory"].items())[1:])
    return (f'<details class="configuration" id="config-{index}" '
            f'{"open" if index == 0 else ""}>'
            f"<summary>{esc(c['name'])}: plan {human_bytes(memory['plan_bytes'])}, layer by "
            f"layer {human_bytes(memory['layer_by_layer_bytes'])}, {human_count(c['macs'])} "
            f"MACs</summary>{_targets(c)}{_parts(c)}"
            f"<h3>Memory along the network ({esc(kernel_set)} kernel set)</h3>"
            "<p class=note>Bytes live at each step (before placement) of the layer-by-layer "
            "schedule and of mnv2gen's plan, over the operators each step runs. Dashed: the "
            "placed arenas.</p>"
            f"{timeline_svg(memory, c['name'] + ': live bytes per step')}"
            "<h3>Arena map of the plan</h3><p class=note>Each rectangle is a buffer: where it "
            "sits in the arena (offset) and the plan steps it lives through. Hover for "
            "names.</p>"
            f"{arena_svg(memory, io, c['name'] + ': arena map')}{other}</details>")


def render_html(report: dict) -> str:
    """Return the report as one HTML page with its charts inline."""
    configs = report["configurations"]
    kernel_set = next(iter(configs[0]["memory"]))
    design = ""
    if len(configs) > 1:
        design = ("<h2>Design space</h2><p class=note>Arena bytes against multiply-accumulates "
                  "per configuration (no accuracy). Hollow: layer by layer; filled: mnv2gen's "
                  "plan. Horizontal lines: the largest contiguous SRAM block of catalogue parts "
                  f"minus the {report['ram_allowance_bytes']:,} B allowance.</p>"
                  + design_space_svg(report, kernel_set, "RAM against MACs per configuration"))
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=generator content=mnv2gen>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>mnv2gen estimate</title><style>{_CSS}</style>"
        f"<script>{_SCRIPT}</script></head><body>"
        f"<h1>mnv2gen estimate</h1><p class=note>mnv2gen {esc(report['mnv2gen'])}, "
        f"{esc(report['kernels'])} kernels, targets {esc(', '.join(report['targets']))}; RAM "
        f"allowance {report['ram_allowance_bytes']:,} B.<br>{esc(report['instructions_note'])}."
        f"<br>{esc(report['latency_note'])}.</p>"
        f"<h2>Summary</h2>{_summary(report)}{design}<h2>Configurations</h2>"
        + "".join(_configuration(c, i) for i, c in enumerate(configs))
        + "</body></html>\n")
