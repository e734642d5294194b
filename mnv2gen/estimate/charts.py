"""The report's three charts as inline SVG: memory timeline, arena map, design space.

The chart data comes from the `estimate` report (the `--json` document), so the HTML and
the PNGs (png.py) show the same numbers: `step_series`, `buffer_kind` and `part_limits`
are shared with png.py.
"""

from __future__ import annotations

from mnv2gen.estimate.svg import (
    FONT,
    Scale,
    axes,
    esc,
    human_bytes,
    human_count,
    legend,
    nice_max,
    svg,
)

LAYER_COLOUR = "#d9822b"
PLAN_COLOUR = "#2b6cb0"
STREAMED_COLOUR = "#2f855a"
KIND_COLOURS = {"input/output": "#e0a526", "tensor": "#7fa7d9", "scratch": "#9fd39a"}


def step_series(rows: list[dict]) -> tuple[list[float], list[float]]:
    """Return (x, y) of a step line: each row covers operators first_op..last_op."""
    xs, ys = [], []
    for r in rows:
        xs += [r["first_op"], r["last_op"] + 1]
        ys += [r["live_bytes"], r["live_bytes"]]
    return xs, ys


def buffer_kind(name: str, io_names: set[str]) -> str:
    """Return 'input/output', 'scratch' (a unit's working buffer) or 'tensor'."""
    if name in io_names:
        return "input/output"
    return "scratch" if "." in name else "tensor"


def part_limits(report: dict) -> list[tuple[float, str]]:
    """Return (available RAM bytes, part names) per distinct limit, from all parts seen."""
    limits: dict[int, list[str]] = {}
    for c in report["configurations"]:
        for p in c["parts"]:
            names = limits.setdefault(p["ram_available_bytes"], [])
            if p["part"] not in names:
                names.append(p["part"])
    return sorted((v, ", ".join(n)) for v, n in limits.items())


def short_label(c: dict) -> str:
    """Return a configuration's label for crowded charts: '0.35/96' (alpha/resolution) for
    model-free ones (with '/10cls' when classes vary), the name for model files."""
    if c.get("alpha") is None:
        return c["name"]
    classes = f"/{c['classes']}cls" if c["name"].endswith("cls") else ""
    return f"{c['alpha']:g}/{c['resolution']}{classes}"


def place_labels(labels: list[tuple[float, float, str]], markers: list[tuple[float, float]],
                 char_px: float = 6.0, height_px: float = 11.0) -> list[tuple[float, float]]:
    """Return a (dx, dy) pixel offset per (x, y, text) label so that labels overlap neither
    each other nor the markers: positions around the point are tried in order and the first
    free one wins (the last one when all collide). Pixel y grows downwards."""
    candidates = [(7, 4), (7, -8), (-7, 4), (-7, -8), (7, 16), (-7, 16), (7, -20), (-7, -20)]
    boxes = [(x - 5, y - 5, x + 5, y + 5) for x, y in markers]
    offsets = []
    for x, y, text in labels:
        width = char_px * len(text)
        for dx, dy in candidates:
            x0 = x + dx if dx > 0 else x + dx - width
            box = (x0, y + dy - height_px + 2, x0 + width, y + dy + 2)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in boxes):
                break
        boxes.append(box)
        offsets.append((dx, dy))
    return offsets


def timeline_svg(memory: dict, title: str) -> str:
    """Return the live-bytes-per-operator chart of both schedules of one kernel set."""
    width, height, left, right, top, bottom = 1200, 330, 80, 20, 40, 270
    layer, plan = memory["timeline"]["layer_by_layer"], memory["timeline"]["plan"]
    streamed = memory["timeline"].get("streamed", [])
    ops = max(memory["operators"], 1)
    peak = max([r["live_bytes"] for r in layer + plan + streamed] + [1])
    x = Scale(0, ops, left, width - right)
    y = Scale(0, nice_max(peak * 1.05), bottom, top)
    body = [axes(x, y, "operator (position in the integer graph)", "live bytes",
                 lambda v: f"{v:.0f}", human_bytes)]
    for r in plan:  # a depth-first segment: a shaded band over the operators it chains
        if r.get("segment"):
            x0, x1 = x(r["first_op"]), x(r["last_op"] + 1)
            body.append(f'<rect class="segment" x="{x0:.1f}" y="{top}" width="'
                        f'{max(x1 - x0, 1):.1f}" height="{bottom - top}" fill="{PLAN_COLOUR}" '
                        f'fill-opacity="0.06"><title>{esc(r["name"])}: depth-first over '
                        f'{esc(", ".join(r["segment"]))}</title></rect>')
            body.append(f'<text x="{x0 + 3:.1f}" y="{top + 12}" style="{FONT};font-size:10px"'
                        f' fill="{PLAN_COLOUR}">{esc(r["name"])}</text>')
    series = [(layer, LAYER_COLOUR, "layer by layer"), (plan, PLAN_COLOUR, "mnv2gen plan")]
    if streamed:
        series.append((streamed, STREAMED_COLOUR, "streamed input"))
    for rows, colour, label in series:
        xs, ys = step_series(rows)
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(xs, ys, strict=True))
        area = f"{x(xs[0]):.1f},{y(0):.1f} {points} {x(xs[-1]):.1f},{y(0):.1f}"
        body.append(f'<polygon class="area" points="{area}" fill="{colour}" '
                    'fill-opacity="0.12" stroke="none"/>')
        body.append(f'<polyline class="series" data-series="{esc(label)}" points="{points}" '
                    f'fill="none" stroke="{colour}" stroke-width="2"/>')
        for r in rows:  # invisible hover targets with a tooltip per unit
            x0, x1 = x(r["first_op"]), x(r["last_op"] + 1)
            body.append(f'<rect class="unit" x="{x0:.1f}" y="{y(r["live_bytes"]) - 3:.1f}" '
                        f'width="{max(x1 - x0, 1):.1f}" height="6" fill="{colour}" '
                        f'fill-opacity="0"><title>{esc(label)}: {esc(r["name"])}, ops '
                        f'{r["first_op"]}-{r["last_op"]}: {r["live_bytes"]:,} B live'
                        f'</title></rect>')
    for value, colour, label in ((memory["layer_by_layer_bytes"], LAYER_COLOUR,
                                  "layer-by-layer arena"),
                                 (memory["plan_bytes"], PLAN_COLOUR, "plan arena")):
        body.append(f'<line class="peak" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" '
                    f'y2="{y(value):.1f}" stroke="{colour}" stroke-dasharray="5,4"/>')
        body.append(f'<text x="{width - right - 4}" y="{y(value) - 4:.1f}" text-anchor="end" '
                    f'style="{FONT};font-size:11px" fill="{colour}">{esc(label)} '
                    f'{human_bytes(value)}</text>')
    keys = [("layer by layer", LAYER_COLOUR, "line"), ("mnv2gen plan", PLAN_COLOUR, "line")]
    if streamed:
        keys.append(("streamed input", STREAMED_COLOUR, "line"))
    body.append(legend([*keys, ("dashed: placed arena (peak)", "#666", "line")], left, 18))
    return svg(width, height, "timeline", title, "".join(body))


def numbered_buffers(memory: dict) -> list[tuple[int, dict]]:
    """Return the plan's buffers with the number the arena map and its legend show them
    under: 1, 2, ... in order of their first step, then offset."""
    ordered = sorted(memory["arena_map"], key=lambda b: (b["first_step"], b["offset"], b["name"]))
    return list(enumerate(ordered, start=1))


def _label(text_options: list[str], width: float, height: float, char_px: float = 6.4,
           height_px: float = 11.0) -> str | None:
    """Return the first of `text_options` that fits a width x height box, or None."""
    for text in text_options:
        if height >= height_px and width >= char_px * len(text) + 4:
            return text
    return None


def arena_svg(memory: dict, io_names: set[str], title: str) -> str:
    """Return the arena map of the plan: one rectangle per buffer, offset x step, each
    labelled in place with its name where it fits, else with its number (the legend
    table beside the chart names every number), so a printout needs no hovering."""
    buffers = numbered_buffers(memory)
    steps = max([b["last_step"] + 1 for _, b in buffers] + [1])
    width, height, left, right, top, bottom = 1200, 520, 80, 20, 40, 460
    arena = max(memory["plan_bytes"], 1)
    x = Scale(0, steps, left, width - right)
    y = Scale(0, arena, bottom, top)
    body = [axes(x, y, "plan step", "arena offset", lambda v: f"{v:.0f}", human_bytes,
                 [t for t in x.ticks() if t == int(t)])]
    labels = []
    for number, b in buffers:
        kind = buffer_kind(b["name"], io_names)
        x0, x1 = x(b["first_step"]), x(b["last_step"] + 1)
        y0, y1 = y(b["offset"] + b["bytes"]), y(b["offset"])
        w, h = max(x1 - x0, 0.8), max(y1 - y0, 0.8)
        body.append(f'<rect class="buffer" data-kind="{kind}" data-number="{number}" '
                    f'x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" '
                    f'fill="{KIND_COLOURS[kind]}" stroke="#333" stroke-width="0.4">'
                    f'<title>{number}: {esc(b["name"])}: {b["bytes"]:,} B at offset '
                    f'{b["offset"]:,}, steps {b["first_step"]}-{b["last_step"]}</title></rect>')
        text = _label([b["name"], str(number)], w, h)
        if text is not None:
            labels.append(f'<text class="buffer-label" x="{x0 + w / 2:.1f}" '
                          f'y="{y0 + h / 2 + 3.5:.1f}" text-anchor="middle">{esc(text)}</text>')
    body.append(f'<g style="{FONT};font-size:10px" fill="#111" pointer-events="none">'
                + "".join(labels) + "</g>")
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{y(arena):.1f}" y2="{y(arena):.1f}"'
                f' stroke="{PLAN_COLOUR}" stroke-dasharray="5,4"/>')
    body.append(legend([(k, c, "box") for k, c in KIND_COLOURS.items()]
                       + [(f"arena {human_bytes(arena)}", PLAN_COLOUR, "line"),
                          ("labels: buffer name, or its number in the table below", "#fff",
                           "box")], left, 18))
    return svg(width, height, "arena-map", title, "".join(body))


def design_space_svg(report: dict, kernel_set: str, title: str) -> str:
    """Return RAM (layer by layer and plan) against MACs per configuration, with the
    catalogue parts' available RAM as horizontal lines."""
    width, height, left, right, top, bottom = 1200, 440, 80, 250, 40, 380
    points = [(c["macs"], c["memory"][kernel_set]["layer_by_layer_bytes"],
               c["memory"][kernel_set]["plan_bytes"], c["name"], short_label(c))
              for c in report["configurations"] if kernel_set in c["memory"]]
    limits = part_limits(report)
    values = [v for p in points for v in p[1:3]] + [v for v, _ in limits]
    x = Scale(min(p[0] for p in points) / 1.5, max(p[0] for p in points) * 1.5,
              left, width - right, log=True)
    y = Scale(min(values) / 1.5, max(values) * 1.5, bottom, top, log=True)
    body = [axes(x, y, "multiply-accumulates per inference (log)", "arena bytes (log)",
                 human_count, human_bytes)]
    label_y = []
    for value, names in limits:  # labels pushed apart so they stay readable
        py = y(value)
        ly = min(py, label_y[-1] - 12) if label_y else py
        label_y.append(ly)
        body.append(f'<line class="limit" x1="{left}" x2="{width - right}" y1="{py:.1f}" '
                    f'y2="{py:.1f}" stroke="#b33" stroke-opacity="0.55" stroke-dasharray="3,3">'
                    f'<title>{esc(names)}: {value:,} B available</title></line>')
        body.append(f'<text x="{width - right + 6}" y="{ly + 4:.1f}" style="{FONT};'
                    f'font-size:10.5px" fill="#b33">{esc(names)} ({human_bytes(value)})</text>')
    offsets = place_labels([(x(p[0]), y(p[2]), p[4]) for p in points],
                           [(x(p[0]), y(v)) for p in points for v in p[1:3]])
    for (macs, layer, plan, name, label), (dx, dy) in zip(points, offsets, strict=True):
        px = x(macs)
        body.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(layer):.1f}" y2="{y(plan):.1f}" '
                    'stroke="#999"/>')
        body.append(f'<circle class="config layer" cx="{px:.1f}" cy="{y(layer):.1f}" r="5" '
                    f'fill="white" stroke="{LAYER_COLOUR}" stroke-width="2"><title>{esc(name)}'
                    f': layer by layer {layer:,} B, {macs:,} MACs</title></circle>')
        body.append(f'<circle class="config plan" cx="{px:.1f}" cy="{y(plan):.1f}" r="5" '
                    f'fill="{PLAN_COLOUR}"><title>{esc(name)}: plan {plan:,} B, {macs:,} MACs'
                    '</title></circle>')
        anchor = "start" if dx > 0 else "end"
        body.append(f'<text x="{px + dx:.1f}" y="{y(plan) + dy:.1f}" text-anchor="{anchor}" '
                    f'style="{FONT};font-size:10px" fill="#333">{esc(label)}</text>')
    body.append(legend([("layer by layer", LAYER_COLOUR, "line"),
                        ("mnv2gen plan", PLAN_COLOUR, "box"),
                        ("part RAM minus allowance", "#b33", "line"),
                        ("labels: alpha/resolution", "#fff", "box")], left, 18))
    return svg(width, height, "design-space", title, "".join(body))
