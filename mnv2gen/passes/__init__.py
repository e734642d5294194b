"""Graph rewrites, one per module, applied in the order of PASSES.

`run_passes` verifies the graph after every pass and names the pass that broke it.
"""

from __future__ import annotations

from collections.abc import Callable

from mnv2gen.errors import IRError
from mnv2gen.ir import Graph
from mnv2gen.passes.fold_constants import fold_constants
from mnv2gen.passes.fold_pad import fold_pad
from mnv2gen.passes.requantize_concat import requantize_concat
from mnv2gen.passes.rewire import drop_dead_ops, drop_unused_constants
from mnv2gen.passes.sink_transpose import sink_transpose
from mnv2gen.passes.transpose_reshape import transpose_reshape

PASSES: tuple[Callable[[Graph], Graph], ...] = (
    fold_constants,
    drop_dead_ops,
    requantize_concat,
    fold_pad,
    sink_transpose,
    transpose_reshape,
    drop_unused_constants,
)


def run_passes(graph: Graph) -> Graph:
    """Return `graph` rewritten by every pass in PASSES, verified after each."""
    for rewrite in PASSES:
        graph = rewrite(graph)
        try:
            graph.verify()
        except IRError as exc:
            raise IRError(f"pass {rewrite.__name__} broke the graph: {exc.message}") from None
    return graph
