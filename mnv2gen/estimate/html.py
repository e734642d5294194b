"""The `--html` report: one self-contained page (inline CSS and SVG, no network, no files).

Numbers are formatted by `formats` exactly as the terminal table prints them. Charts scale
with the window; the arena map is labelled in place and has a numbered buffer table, so a
printout reads without hovering (printing opens every configuration).
"""

from __future__ import annotations

from mnv2gen.estimate import formats as fmt
from mnv2gen.estimate.charts import (
    arena_svg,
    buffer_kind,
    design_space_svg,
    numbered_buffers,
    timeline_svg,
)
from mnv2gen.estimate.svg import esc, human_bytes

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:16px 24px;
color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:15px;margin-top:20px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.scroll{overflow-x:auto;max-width:100%}
.fits{color:#1a7f37}.plan-only{color:#2b6cb0;font-weight:600}.no,.no-flash{color:#b33}
.note{color:#555;font-size:13px;max-width:110em}details{margin:12px 0}
summary{cursor:pointer;font-weight:600}
svg.chart{display:block;margin:8px 0;width:100%;max-width:1600px;height:auto}
.caveats{font-size:13px;margin:4px 0 14px;padding-left:2.2em;max-width:110em}
.caveats li{margin:2px 0}sup{font-size:10px;color:#b35900;font-weight:600}
.buffers{display:grid;grid-template-columns:repeat(auto-fill,minmax(25em,1fr));gap:8px 20px;
align-items:start}.buffers table{margin:0;font-size:12px;width:100%}
.buffers td,.buffers th{padding:1px 5px}
.buffers td.name{text-align:left;overflow-wrap:anywhere;word-break:break-all}
td{white-space:nowrap}td.l,td.name{white-space:normal}td.nw{white-space:nowrap}
@media print{body{margin:0;font-size:11px}summary{list-style:none}
svg.chart,table,.caveats{break-inside:avoid}}
"""
# Opens a configuration from the summary links (and all of them for printing), and records
# each chart's rendered size in data-rendered (and how many charts have a size in
# body[data-charts-rendered]): a layout check the tests read from a headless browser.
_SCRIPT = """
function openHash(){var d=document.getElementById(location.hash.slice(1));
if(d&&d.tagName==="DETAILS"){d.open=true;}}
window.addEventListener("hashchange",openHash);
window.addEventListener("beforeprint",function(){
document.querySelectorAll("details").forEach(function(d){d.open=true;});});
document.addEventListener("DOMContentLoaded",function(){openHash();var n=0;
document.querySelectorAll("svg.chart").forEach(function(s){var r=s.getBoundingClientRect();
if(r.width>0&&r.height>0){n++;}
s.setAttribute("data-rendered",Math.round(r.width)+"x"+Math.round(r.height));});
document.body.setAttribute("data-charts-rendered",String(n));
document.body.setAttribute("data-page-width",String(document.body.clientWidth));});
"""


def _summary(report: dict) -> str:
    rows = ["<table><tr><th class=l>configuration</th><th>MACs</th><th class=l>target</th>"
            "<th>layer-by-layer arena B</th><th>plan arena B (resident)</th>"
            "<th>plan arena B (streamed)</th><th>flash B</th>"
            "<th class=l>instructions</th><th class=l>fits (plan only)</th>"
            "<th class=l>fits streamed</th></tr>"]
    for index, c in enumerate(report["configurations"]):
        for i, t in enumerate(c["targets"]):
            parts = [p for p in c["parts"] if p["target"] == t["target"]]
            fits = ", ".join(p["part"] for p in parts if p["fits"] == "fits")
            only = ", ".join(p["part"] for p in parts if p["fits"] == "plan-only")
            streamed = ", ".join(p["part"] for p in parts if p["fits_streamed"] == "fits")
            first = (f'<td class=l rowspan="{len(c["targets"])}"><a href="#config-{index}">'
                     f'{esc(c["name"])}</a></td>'
                     f'<td rowspan="{len(c["targets"])}">{fmt.count(c["macs"])}</td>'
                     if i == 0 else "")
            rows.append(f"<tr>{first}<td class=l>{esc(t['target'])}</td>"
                        f"<td>{fmt.count(t['layer_by_layer_bytes'])}</td>"
                        f"<td>{fmt.count(t['resident_plan_bytes'])}</td>"
                        f"<td>{fmt.count(t['streamed_plan_bytes'])}</td>"
                        f"<td>{fmt.count(t['flash_bytes'])}</td>"
                        f"<td class='l nw'>{esc(fmt.instructions(t))}</td>"
                        f"<td class=l>{esc(fits) or '-'}"
                        f"{f' <span class=plan-only>({esc(only)})</span>' if only else ''}"
                        f"</td><td class=l>{esc(streamed) or '-'}</td></tr>")
    return "".join(rows) + "</table>"


def _targets(c: dict) -> str:
    rows = ["<table><tr><th class=l>target</th><th class=l>kernel set</th><th>layer B</th>"
            "<th>resident B</th><th>streamed B</th><th>lower bound B</th><th>const B</th>"
            "<th>code B</th><th class=l>code from</th><th>flash B</th>"
            "<th class=l>instructions</th></tr>"]
    for t in c["targets"]:
        rows.append(f"<tr><td class=l>{esc(t['target'])}</td><td class=l>{esc(t['kernel_set'])}"
                    f"</td><td>{fmt.count(t['layer_by_layer_bytes'])}</td>"
                    f"<td>{fmt.count(t['resident_plan_bytes'])}</td>"
                    f"<td>{fmt.count(t['streamed_plan_bytes'])}</td>"
                    f"<td>{fmt.count(t['lower_bound_bytes'])}</td>"
                    f"<td>{fmt.count(t['const_bytes'])}</td><td>{fmt.count(t['code_bytes'])}</td>"
                    f"<td class=l>{esc(t['code_bytes_source'])}</td>"
                    f"<td>{fmt.count(t['flash_bytes'])}</td>"
                    f"<td class='l nw'>{esc(fmt.instructions(t))}</td></tr>")
    return "<div class=scroll>" + "".join(rows) + "</table></div>"


def _streamed_margin(p: dict) -> str:
    margin = p["streamed_margin_bytes"]
    return "-" if margin is None else fmt.signed(margin)


def _parts(c: dict, caveats: dict[str, int]) -> str:
    if not c["parts"]:
        return "<p class=note>No catalogue part uses the estimated targets.</p>"
    rows = ["<table class=parts><tr><th class=l>part</th><th class=l>core</th><th>MHz</th>"
            "<th class=l>largest SRAM block</th><th>RAM avail B</th><th>layer margin</th>"
            "<th>plan margin</th><th>streamed margin</th><th>flash margin</th>"
            "<th class=l>verdict</th><th class=l>streamed</th>"
            "<th>latency &ge;</th><th class=l>calibrated on</th></tr>"]
    for p in c["parts"]:
        mark = f"<sup>{fmt.marks(p, caveats)}</sup>" if p["latency_caveats"] else ""
        calibrated = esc(p["target"])
        if p["calibration_borrowed"]:
            calibrated += f" <b>borrowed</b> (a {esc(p['calibration_core'])})"
        rows.append(f"<tr><td class=l>{esc(p['part'])}</td><td class=l>{esc(p['core'])}</td>"
                    f"<td>{p['clock_mhz']:g}</td><td class=l>{esc(p['ram_region'])}</td>"
                    f"<td>{p['ram_available_bytes']:,}</td>"
                    f"<td>{fmt.signed(p['layer_margin_bytes'])}</td>"
                    f"<td>{fmt.signed(p['plan_margin_bytes'])}</td>"
                    f"<td>{_streamed_margin(p)}</td>"
                    f"<td>{fmt.signed(p['flash_margin_bytes'])}</td>"
                    f"<td class='l {p['fits']}'>{fmt.VERDICTS[p['fits']]}</td>"
                    f"<td class='l {p['fits_streamed']}'>"
                    f"{fmt.VERDICTS.get(p['fits_streamed'], p['fits_streamed'])}</td>"
                    f"<td>{fmt.latency(p['latency_ms'])}{mark}</td>"
                    f"<td class=l>{calibrated}</td></tr>")
    mine = {text: n for p in c["parts"] for text in p["latency_caveats"]
            for n in (caveats[text],)}
    marked = "".join(f"<li value={n}>{esc(text)}</li>"
                     for text, n in sorted(mine.items(), key=lambda kv: kv[1]))
    notes = "".join(f"<li><b>{esc(p['part'])}</b>: {esc(p['note'])}</li>"
                    for p in c["parts"] if p["note"])
    return ("<div class=scroll>" + "".join(rows) + "</table></div>"
            + (f"<p class=note>Latency caveats (the marks in the latency column):</p>"
               f"<ol class=caveats>{marked}</ol>" if mine else "")
            + (f"<p class=note>Notes on the parts:</p><ul class=caveats>{notes}</ul>"
               if notes else ""))


def _short(name: str, limit: int = 64) -> str:
    """Return a tensor name cut to `limit` characters (with an ellipsis)."""
    return name if len(name) <= limit else name[:limit - 1] + "\u2026"


def _buffer_table(memory: dict, io: set[str], rows_per_table: int = 24) -> str:
    """Return the numbered buffers of the arena map as a grid of short tables (as many
    side by side as the window holds)."""
    rows = [f"<tr><td>{n}</td><td class=name title=\"{esc(b['name'])}\">"
            f"{esc(_short(b['name']))}</td>"
            f"<td class=l>{buffer_kind(b['name'], io)}</td><td>{b['bytes']:,}</td>"
            f"<td>{b['offset']:,}</td><td>{b['first_step']}-{b['last_step']}</td></tr>"
            for n, b in numbered_buffers(memory)]
    header = ("<tr><th>#</th><th class=l>buffer</th><th class=l>kind</th><th>bytes</th>"
              "<th>offset</th><th>steps</th></tr>")
    tables = "".join(f"<table>{header}{''.join(rows[i:i + rows_per_table])}</table>"
                     for i in range(0, len(rows), rows_per_table))
    return f"<div class=buffers>{tables}</div>"


def _configuration(c: dict, index: int, caveats: dict[str, int]) -> str:
    kernel_set, memory = next(iter(c["memory"].items()))
    io = set(memory["io_buffers"])
    other = "".join(
        f"<p class=note>Kernel set {esc(k)}: layer by layer {m['layer_by_layer_bytes']:,} B, "
        f"plan {m['plan_bytes']:,} B (charts show {esc(kernel_set)}).</p>"
        for k, m in list(c["memory"].items())[1:])
    return (f'<details class="configuration" id="config-{index}" '
            f'{"open" if index == 0 else ""}>'
            f"<summary>{esc(c['name'])}: plan {memory['plan_bytes']:,} B "
            f"({human_bytes(memory['plan_bytes'])}), layer by layer "
            f"{memory['layer_by_layer_bytes']:,} B, {fmt.count(c['macs'])} MACs</summary>"
            f"{_targets(c)}{_parts(c, caveats)}"
            f"<h3>Memory along the network ({esc(kernel_set)} kernel set)</h3>"
            "<p class=note>Bytes live at each step (before placement) of the layer-by-layer "
            "schedule and of mnv2gen's plan, over the operators each step runs. Dashed: the "
            "placed arenas.</p>"
            f"{timeline_svg(memory, c['name'] + ': live bytes per step')}"
            "<h3>Arena map of the plan</h3><p class=note>Each rectangle is a buffer: where it "
            "sits in the arena (offset) and the plan steps it lives through. Labelled with its "
            "name where that fits, else its number in the table below.</p>"
            f"{arena_svg(memory, io, c['name'] + ': arena map')}"
            f"{_buffer_table(memory, io)}{other}</details>")


def render_html(report: dict) -> str:
    """Return the report as one HTML page with its charts inline."""
    configs = report["configurations"]
    caveats = fmt.caveat_numbers(report)
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
        f"<br>{esc(report['latency_note'])}; parts marked in the latency column have further "
        "caveats, listed under their table.</p>"
        f"<h2>Summary</h2>{_summary(report)}{design}<h2>Configurations</h2>"
        + "".join(_configuration(c, i, caveats) for i, c in enumerate(configs))
        + "</body></html>\n")
