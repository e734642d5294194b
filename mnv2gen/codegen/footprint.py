"""What the compiled library costs: text/data/bss of its objects and its worst stack depth.

The build's compile check compiles every library source with `-fstack-usage
-fcallgraph-info=su` (GCC 10 and later): each object comes with a call graph whose nodes
carry their frame sizes. The deepest chain from an API function through the library's own
functions is the stack the library needs; calls into the C library (memcpy, memset,
memmove) and the application's hooks (yield, profiling) are outside it and listed.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_FRAME = re.compile(r"(\d+) bytes \((static|dynamic|dynamic,bounded)\)")
#: Flags that make GCC write the .su and .ci files next to each object.
STACK_FLAGS = ("-fstack-usage", "-fcallgraph-info=su")


@dataclass(frozen=True)
class Footprint:
    """Sizes of the compiled library: `size`'s text (code and const data), data and bss
    summed over its objects; the deepest stack of an API function (None when GCC wrote no
    call graph) with that call chain and the outside functions the library calls."""

    text: int
    data: int
    bss: int
    stack_bytes: int | None
    stack_chain: tuple[str, ...] = ()
    outside_calls: tuple[str, ...] = ()
    stack_exact: bool = True  # False when a frame is dynamic or a call is indirect


def object_sizes(size_tool: str, objects: list[Path]) -> tuple[int, int, int]:
    """Return (text, data, bss) summed over `objects` as `size` (Berkeley format) says."""
    done = subprocess.run([size_tool, *map(str, objects)], capture_output=True, text=True,
                          check=True)
    totals = [0, 0, 0]
    for line in done.stdout.splitlines()[1:]:
        for i, value in enumerate(line.split()[:3]):
            totals[i] += int(value)
    return totals[0], totals[1], totals[2]


def _graph(call_graphs: list[Path]) -> tuple[dict, dict, bool]:
    frames: dict[str, int] = {}
    edges: dict[str, list[str]] = {}
    exact = True
    for path in call_graphs:
        text = path.read_text()
        for title, label in _NODE.findall(text):
            frame = _FRAME.search(label)
            if frame:
                frames[title] = int(frame[1])
                exact &= frame[2] == "static"
            exact &= "__indirect_call" not in title
        for source, target in _EDGE.findall(text):
            edges.setdefault(source, []).append(target)
    return frames, edges, exact


def stack_depth(call_graphs: list[Path], entry_points: list[str]) -> Footprint | None:
    """Return the deepest stack of `entry_points` (as a Footprint without sizes), None
    when there is no call graph or a call chain is recursive."""
    frames, edges, exact = _graph(call_graphs)
    if not frames:
        return None
    outside: set[str] = set()

    @functools.cache
    def deepest(node: str, depth: int = 0) -> tuple[int, tuple[str, ...]]:
        if depth > 64:
            raise RecursionError(node)
        best = (0, ())
        for target in edges.get(node, ()):
            if target not in frames:
                outside.add(target)
                continue
            below = deepest(target, depth + 1)
            best = max(best, below)
        return frames[node] + best[0], (node.split(":")[-1], *best[1])

    try:
        found = [deepest(e) for e in entry_points if e in frames]
    except RecursionError:
        return None
    if not found:
        return None
    stack, chain = max(found)
    return Footprint(0, 0, 0, stack, chain, tuple(sorted(outside)), exact)
