"""The estimate reports: a self-contained HTML page that renders in headless Chromium,
and the same charts as PNG files."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess

import pytest

from mnv2gen.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Return (report dict, HTML path, PNG folder) of a small sweep on one target."""
    folder = tmp_path_factory.mktemp("report")
    html, png = folder / "report.html", folder / "png"
    code, out, err = run("estimate", "--arch", "mobilenet-v2", "--alpha", "0.35,0.5",
                         "--resolution", "64,96", "--classes", "10", "--target", "cortex-m4",
                         "--target", "cortex-m0", "--code-table", "--json", "--quiet",
                         "--html", html, *(("--png", png) if _has_matplotlib() else ()))
    assert code == 0, err
    return json.loads(out), html, png


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def chromium(html, *args: str, tmp_path) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={profile}", *args, html.as_uri()],
        capture_output=True, text=True, timeout=120)


def test_html_is_one_self_contained_page(report):
    _, html, _ = report
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("<html") == 1
    # nothing to fetch: no external scripts, styles, images or fonts
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", text)
    assert "url(" not in text and "@import" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {"http://www.w3.org/2000/svg"}
    assert text.count('class="chart timeline"') == 4
    assert text.count('class="chart arena-map"') == 4
    assert text.count('class="chart design-space"') == 1


@needs_chromium
def test_charts_render_in_headless_chromium(report, tmp_path):
    data, html, _ = report
    done = chromium(html, "--dump-dom", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # the page script ran and found the open charts laid out with a size
    rendered = re.search(r'data-charts-rendered="(\d+)"', dom)
    assert rendered and int(rendered.group(1)) >= 3, "design space + first configuration"
    for chart in ("design-space", "timeline", "arena-map"):
        size = re.search(rf'class="chart {chart}"[^>]*data-rendered="(\d+)x(\d+)"', dom)
        assert size and int(size.group(1)) > 300 and int(size.group(2)) > 150, chart
    # the marks: two series per timeline, one rectangle per buffer, two dots per config
    series = sum(2 + ("streamed" in next(iter(c["memory"].values()))["timeline"])
                 for c in data["configurations"])  # layer, plan and the streamed plan
    assert series == 3 * len(data["configurations"])
    assert dom.count('<polyline class="series"') == series
    buffers = sum(len(next(iter(c["memory"].values()))["arena_map"])
                  for c in data["configurations"])
    assert dom.count('<rect class="buffer"') == buffers
    assert dom.count('<circle class="config plan"') == len(data["configurations"])
    assert dom.count('<line class="limit"') >= 1


@needs_chromium
def test_screenshot_uses_the_window_width(report, tmp_path):
    """A wide window is filled: the page and its charts grow with it (no fixed max-width),
    and pixels are drawn across the whole width."""
    pil = pytest.importorskip("PIL.Image", reason="Pillow checks the screenshot's pixels")
    _, html, _ = report
    shot = tmp_path / "shot.png"
    done = chromium(html, f"--screenshot={shot}", "--window-size=1600,2400", tmp_path=tmp_path)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    image = pil.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, "charts draw many colours"
    width, height = image.size
    right = image.crop((int(width * 0.75), 0, width - 20, height)).convert("L")
    drawn = sum(count for count, value in right.getcolors(1 << 8) if value < 200)
    assert drawn > 2000, "the right quarter of a 1600 px window holds tables and charts"
    dom = chromium(html, "--dump-dom", "--window-size=1600,2400", tmp_path=tmp_path).stdout
    page = int(re.search(r'data-page-width="(\d+)"', dom).group(1))
    assert page > 1500
    size = re.search(r'class="chart arena-map"[^>]*data-rendered="(\d+)x(\d+)"', dom)
    assert int(size.group(1)) > 1300


def test_arena_map_names_its_buffers_without_hovering(report):
    """Every buffer of every map has a number; names are drawn in place where they fit and
    the table under the map lists every number with its name (a printout needs no hover)."""
    data, html, _ = report
    text = html.read_text()
    maps = text.split('class="chart arena-map"')[1:]
    assert len(maps) == len(data["configurations"])
    for c, chunk in zip(data["configurations"], maps, strict=True):
        buffers = next(iter(c["memory"].values()))["arena_map"]
        chart, table = chunk.split("</svg>", 1)
        labels = re.findall(r'<text class="buffer-label"[^>]*>([^<]+)</text>', chart)
        names = {b["name"] for b in buffers}
        assert len(labels) >= len(buffers) // 2
        assert any(label in names for label in labels), "some names fit in place"
        numbers = re.findall(r'data-number="(\d+)"', chart)
        assert sorted(map(int, numbers)) == list(range(1, len(buffers) + 1))
        table = table.split("</details>", 1)[0]
        for name in names:
            assert f'title="{html_escape(name)}">' in table
    assert "beforeprint" in text  # printing opens every configuration


def test_html_shows_the_console_figures_and_latency_caveats(report):
    """The same decimals as the terminal table, and the caveats beside RP2040's latency."""
    from mnv2gen.estimate import formats
    from mnv2gen.estimate.table import render

    data, html, _ = report
    text = html.read_text()
    console = render(data)
    for c in data["configurations"]:
        for t in c["targets"]:
            shown = formats.instructions(t)
            assert shown in console and html_escape(shown) in text
        for p in c["parts"]:
            latency = formats.latency(p["latency_ms"])
            assert latency in console and latency in text
    rp2040 = re.search(r"<tr><td class=l>RP2040</td><td class=l>Cortex-M0\+.*?</tr>",
                       text).group(0)
    assert "<sup>[1,2]</sup>" in rp2040 and "borrowed" in rp2040
    assert "Cortex-M0+ timed with the cortex-m0 calibration" in text
    assert "external QSPI flash" in text
    assert "optimistic lower bound" in text


def html_escape(value: str) -> str:
    from html import escape

    return escape(value, quote=True)


def test_pngs_are_written(report):
    if not _has_matplotlib():
        pytest.skip("matplotlib not installed (pip install 'mnv2gen[charts]')")
    data, _, png = report
    files = sorted(p.name for p in png.iterdir() if not p.name.startswith("."))
    names = [c["name"] for c in data["configurations"]]
    assert files == sorted([f"{n}_{k}.png" for n in names for k in ("timeline", "arena")]
                           + ["design_space.png"])
    for path in png.glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_png_without_matplotlib_is_a_one_line_error(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, out, err = run("estimate", "--arch", "mobilenet-v2", "--alpha", "0.35",
                         "--resolution", "64", "--target", "cortex-m4", "--code-table",
                         "--png", tmp_path / "png", "--quiet")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "error: --png needs matplotlib, which is not installed",
        "hint: pip install 'mnv2gen[charts]' (or pip install 'matplotlib>=3.7')"]
