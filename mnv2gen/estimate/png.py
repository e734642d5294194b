"""`--png DIR`: the HTML report's charts as PNG files, drawn with matplotlib (optional)."""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path

from mnv2gen.errors import MnvError
from mnv2gen.estimate.charts import (
    KIND_COLOURS,
    LAYER_COLOUR,
    PLAN_COLOUR,
    buffer_kind,
    part_limits,
    place_labels,
    short_label,
    step_series,
)
from mnv2gen.estimate.svg import Scale, human_bytes, human_count


def require_matplotlib() -> None:
    """Raise MnvError (one line and a hint) when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        raise MnvError("--png needs matplotlib, which is not installed",
                       "pip install 'mnv2gen[charts]' (or pip install 'matplotlib>=3.7')")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bytes_axis(axis, lo: float, hi: float, log: bool = False) -> None:
    """Put power-of-two byte ticks (as in the HTML charts) on a matplotlib axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis.set_major_locator(FixedLocator(Scale(lo, hi, 0, 1, log).ticks(binary=True)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: human_bytes(v)))
    axis.set_minor_locator(NullLocator())


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    path.write_bytes(buffer.getvalue())
    return path


def _timeline(plt, c: dict, memory: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for rows, colour, label in ((memory["timeline"]["layer_by_layer"], LAYER_COLOUR,
                                 "layer by layer"),
                                (memory["timeline"]["plan"], PLAN_COLOUR, "mnv2gen plan")):
        xs, ys = step_series(rows)
        ax.plot(xs, ys, color=colour, linewidth=2, label=label)
        ax.fill_between(xs, ys, color=colour, alpha=0.12)
    for value, colour, label in ((memory["layer_by_layer_bytes"], LAYER_COLOUR,
                                  "layer-by-layer arena"),
                                 (memory["plan_bytes"], PLAN_COLOUR, "plan arena")):
        ax.axhline(value, color=colour, linestyle="--", linewidth=1)
        ax.annotate(f"{label} {human_bytes(value)}", (memory["operators"], value),
                    xytext=(-4, 4), textcoords="offset points", ha="right", color=colour,
                    fontsize=9)
    top = max(y for r in memory["timeline"].values() for y in step_series(r)[1]) * 1.06
    ax.set_xlim(0, memory["operators"])
    ax.set_ylim(0, top)
    _bytes_axis(ax.yaxis, 0, top)
    ax.set_xlabel("operator (position in the integer graph)")
    ax.set_ylabel("live bytes")
    ax.set_title(f"{c['name']}: live bytes per step")
    ax.grid(axis="y", color="#e5e5e5")
    ax.legend(loc="upper center", ncol=2, frameon=False, bbox_to_anchor=(0.5, -0.16))
    return _save(fig, path)


def _arena(plt, c: dict, memory: dict, path: Path) -> Path:
    from matplotlib.patches import Patch, Rectangle

    fig, ax = plt.subplots(figsize=(10, 4.8))
    io_names = set(memory["io_buffers"])
    steps = max([b["last_step"] + 1 for b in memory["arena_map"]] + [1])
    for b in memory["arena_map"]:
        ax.add_patch(Rectangle((b["first_step"], b["offset"]),
                               b["last_step"] + 1 - b["first_step"], b["bytes"],
                               facecolor=KIND_COLOURS[buffer_kind(b["name"], io_names)],
                               edgecolor="#333", linewidth=0.4))
    ax.axhline(memory["plan_bytes"], color=PLAN_COLOUR, linestyle="--", linewidth=1)
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(0, steps)
    ax.set_ylim(0, memory["plan_bytes"] * 1.04)
    _bytes_axis(ax.yaxis, 0, memory["plan_bytes"] * 1.04)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("plan step")
    ax.set_ylabel("arena offset")
    ax.set_title(f"{c['name']}: arena map of the plan ({human_bytes(memory['plan_bytes'])})")
    ax.legend(handles=[Patch(facecolor=v, edgecolor="#333", label=k)
                       for k, v in KIND_COLOURS.items()],
              loc="upper center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.14))
    return _save(fig, path)


def _design_space(plt, report: dict, kernel_set: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5.5))
    configs = [c for c in report["configurations"] if kernel_set in c["memory"]]
    for c in configs:
        m = c["memory"][kernel_set]
        ax.plot([c["macs"]] * 2, [m["layer_by_layer_bytes"], m["plan_bytes"]], color="#999",
                linewidth=1, zorder=1)
        ax.scatter([c["macs"]], [m["layer_by_layer_bytes"]], facecolor="white",
                   edgecolor=LAYER_COLOUR, linewidth=2, s=40, zorder=2)
        ax.scatter([c["macs"]], [m["plan_bytes"]], color=PLAN_COLOUR, s=40, zorder=2)
    limits = part_limits(report)
    for value, _ in limits:
        ax.axhline(value, color="#b33", alpha=0.55, linestyle=":", linewidth=1)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    lo, hi = ax.get_ylim()
    _bytes_axis(ax.yaxis, lo, hi, log=True)
    x_lo, x_hi = ax.get_xlim()
    ax.xaxis.set_major_locator(FixedLocator(Scale(x_lo, x_hi, 0, 1, log=True).ticks()))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human_count(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    _label_points(ax, configs, kernel_set)
    _label_limits(ax, limits)
    ax.set_xlabel("multiply-accumulates per inference (log)")
    ax.set_ylabel("arena bytes (log)")
    ax.set_title("RAM against MACs: hollow = layer by layer, filled = mnv2gen plan; "
                 "dotted = part RAM minus allowance", fontsize=10)
    ax.grid(color="#eee")
    return _save(fig, path)


def _label_points(ax, configs: list[dict], kernel_set: str) -> None:
    """Label the plan dots with short names placed where they overlap nothing."""
    fig = ax.figure
    fig.canvas.draw()
    height = fig.bbox.height

    def pixel(x, y):  # display coordinates with y growing downwards, like SVG
        px, py = ax.transData.transform((x, y))
        return px, height - py

    memories = [c["memory"][kernel_set] for c in configs]
    labels = [(*pixel(c["macs"], m["plan_bytes"]), short_label(c))
              for c, m in zip(configs, memories, strict=True)]
    markers = [pixel(c["macs"], m[k]) for c, m in zip(configs, memories, strict=True)
               for k in ("plan_bytes", "layer_by_layer_bytes")]
    scale = fig.dpi / 72  # place_labels works in pixels; offsets below are in points
    for (_, _, text), (dx, dy), c, m in zip(
            labels, place_labels(labels, markers, char_px=5.2 * scale, height_px=10 * scale),
            configs, memories, strict=True):
        ax.annotate(text, (c["macs"], m["plan_bytes"]), xytext=(dx / scale, -dy / scale),
                    textcoords="offset points", fontsize=8,
                    ha="left" if dx > 0 else "right", va="baseline")


def _label_limits(ax, limits: list[tuple[float, str]]) -> None:
    """Name the parts at the right of their lines, pushed apart to stay readable."""
    scale = ax.figure.dpi / 72
    placed: list[float] = []
    for value, names in limits:  # ascending: each label at least 11 points above the last
        y = ax.transData.transform((1, value))[1] / scale
        shift = max(0.0, placed[-1] + 11 - y) if placed else 0.0
        placed.append(y + shift)
        ax.annotate(f"{names} ({human_bytes(value)})", (1.0, value),
                    xycoords=("axes fraction", "data"), xytext=(6, shift - 3),
                    textcoords="offset points", fontsize=8, color="#b33",
                    annotation_clip=False)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_pngs(report: dict, folder: str | Path) -> list[Path]:
    """Write the charts of `report` as PNG files into `folder` (created if missing; the CLI
    passes the staging folder of `fsutil.output_directory`):
    <configuration>_timeline.png and _arena.png per configuration, design_space.png for
    sweeps. Return the paths written."""
    require_matplotlib()
    plt = _pyplot()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for c in report["configurations"]:
        memory = next(iter(c["memory"].values()))
        stem = _file_name(c["name"])
        written.append(_timeline(plt, c, memory, out / f"{stem}_timeline.png"))
        written.append(_arena(plt, c, memory, out / f"{stem}_arena.png"))
    if len(report["configurations"]) > 1:
        kernel_set = next(iter(report["configurations"][0]["memory"]))
        written.append(_design_space(plt, report, kernel_set, out / "design_space.png"))
    return written
