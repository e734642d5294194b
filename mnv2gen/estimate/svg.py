"""Minimal SVG building blocks for the report charts: scales, axes, marks, escaping."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif"


def esc(text) -> str:
    """Return `text` escaped for SVG/HTML text and attributes."""
    return escape(str(text), quote=True)


def human_bytes(n: float) -> str:
    """Return a byte count as '512 B', '30 KiB' or '1.4 MiB'."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            value = n / size
            text = f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}"
            return f"{text} {unit}"
    return f"{n:.0f} B"


def human_count(n: float) -> str:
    """Return a count as '950', '12 k', '3.4 M' or '1.2 G'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n:.0f}"


@dataclass(frozen=True)
class Scale:
    """Maps data values in [lo, hi] to pixels in [p0, p1], linear or log10."""

    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def __call__(self, v: float) -> float:
        if self.log:
            lo, hi, v = math.log10(self.lo), math.log10(self.hi), math.log10(max(v, self.lo))
        else:
            lo, hi = self.lo, self.hi
        span = (hi - lo) or 1.0
        return self.p0 + (v - lo) / span * (self.p1 - self.p0)

    def ticks(self, count: int = 6, binary: bool = False) -> list[float]:
        """Return round tick values inside [lo, hi]; `binary` puts them on powers of two
        (byte axes: 16 KiB, 32 KiB, ...)."""
        if self.log:
            if binary:
                start, stop = math.floor(math.log2(self.lo)), math.ceil(math.log2(self.hi))
                every = max(1, -(-(stop - start) // (count + 2)))
                values = [2.0 ** e for e in range(start, stop + 1, every)]
            else:
                start, stop = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
                values = [m * 10 ** e for e in range(start, stop + 1) for m in (1, 2, 5)]
            return [v for v in values if self.lo <= v <= self.hi]
        raw = (self.hi - self.lo) / max(count, 1)
        if binary and raw >= 1:
            step = 2.0 ** math.ceil(math.log2(raw))
        else:
            magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
            step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.lo / step) * step
        return [first + i * step for i in range(int((self.hi - first) / step) + 1)]


def nice_max(value: float) -> float:
    """Return a round number >= value for the top of a linear axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
                if m * magnitude >= value)


def axes(x: Scale, y: Scale, x_label: str, y_label: str, x_fmt, y_fmt,
         x_ticks: list[float] | None = None) -> str:
    """Return the SVG of both axes with grid lines, tick labels and titles; a y axis
    formatted as bytes gets power-of-two ticks."""
    top, bottom = min(y.p0, y.p1), max(y.p0, y.p1)
    left, right = min(x.p0, x.p1), max(x.p0, x.p1)
    parts = [f'<g class="axes" style="{FONT};font-size:11px" fill="#444">']
    for v in y.ticks(binary=y_fmt is human_bytes):
        py = y(v)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{py:.1f}" y2="{py:.1f}" '
                     'stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">'
                     f'{esc(y_fmt(v))}</text>')
    for v in x_ticks if x_ticks is not None else x.ticks():
        px = x(v)
        parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{bottom}" y2="{bottom + 4}" '
                     'stroke="#888"/>')
        parts.append(f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle">'
                     f'{esc(x_fmt(v))}</text>')
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#888"/>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#888"/>')
    parts.append(f'<text x="{(left + right) / 2:.1f}" y="{bottom + 34}" text-anchor="middle" '
                 f'font-size="12">{esc(x_label)}</text>')
    parts.append(f'<text transform="translate({left - 58},{(top + bottom) / 2:.1f}) '
                 f'rotate(-90)" text-anchor="middle" font-size="12">{esc(y_label)}</text>')
    parts.append("</g>")
    return "".join(parts)


def svg(width: int, height: int, css_class: str, title: str, body: str) -> str:
    """Return a standalone <svg> element with a title (read by screen readers)."""
    return (f'<svg class="chart {esc(css_class)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{esc(title)}"><title>{esc(title)}</title>{body}</svg>')


def legend(items: list[tuple[str, str, str]], x: float, y: float) -> str:
    """Return a horizontal legend of (label, colour, kind) with kind 'line' or 'box'."""
    parts, cursor = [f'<g class="legend" style="{FONT};font-size:11px">'], x
    for label, colour, kind in items:
        if kind == "line":
            parts.append(f'<line x1="{cursor}" x2="{cursor + 18}" y1="{y}" y2="{y}" '
                         f'stroke="{colour}" stroke-width="2.5"/>')
        else:
            parts.append(f'<rect x="{cursor}" y="{y - 6}" width="14" height="12" '
                         f'fill="{colour}" stroke="#333" stroke-width="0.5"/>')
        parts.append(f'<text x="{cursor + 22}" y="{y + 4}" fill="#333">{esc(label)}</text>')
        cursor += 30 + 6.2 * len(label)
    parts.append("</g>")
    return "".join(parts)
