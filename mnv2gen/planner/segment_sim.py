"""Run segment tables inside the plan's one bytearray, exactly as mnv2_segment.c does.

Every window, patch, depthwise tile, output tile, ring and E ring lives at its planned
arena offset and every read copies what is in the arena at that moment, so a ring too
small, a wrong offset or an unsafe trailing write changes the outputs.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from mnv2gen.ir import Graph, Op, Padding, Tensor
from mnv2gen.planner.segment import OUT
from mnv2gen.planner.segment_lower import Ring, SegmentTables, StageTables
from mnv2gen.reference import KERNELS
from mnv2gen.reference_ops import average_pool_finish, mean_finish


def ring_read(raw: bytearray, ring: Ring, index: int, pixels: int) -> np.ndarray:
    """Return a copy of pixels [index, index + pixels) of a ring as (pixels, channels)."""
    out = np.empty((pixels, ring.channels), np.int8)
    done = 0
    while done < pixels:
        slot = (index + done) % ring.capacity
        n = min(pixels - done, ring.capacity - slot)
        start = ring.offset + slot * ring.channels
        out[done:done + n] = np.frombuffer(raw, np.int8, n * ring.channels, start).reshape(
            n, ring.channels)
        done += n
    return out


def ring_write(raw: bytearray, ring: Ring, index: int, data: np.ndarray) -> None:
    """Write (pixels, channels) int8 data to pixels [index, ...) of a ring."""
    data = data.reshape(-1, ring.channels)
    done, pixels = 0, data.shape[0]
    while done < pixels:
        slot = (index + done) % ring.capacity
        n = min(pixels - done, ring.capacity - slot)
        start = ring.offset + slot * ring.channels
        raw[start:start + n * ring.channels] = data[done:done + n].astype(np.int8).tobytes()
        done += n


def _view(raw: bytearray, offset: int, shape) -> np.ndarray:
    count = int(np.prod(shape))
    return np.frombuffer(raw, np.int8, count, offset).reshape(shape)


def _put(raw: bytearray, offset: int, data: np.ndarray) -> None:
    b = np.ascontiguousarray(data).astype(np.int8).tobytes()
    raw[offset:offset + len(b)] = b


def patch_call(graph: Graph, op: Op, x: np.ndarray, out_h: int, out_w: int, pad_top: int,
               pad_left: int) -> np.ndarray:
    """Run conv/depthwise `op` on the patch x (1, h, w, c) with pad_top/pad_left padding
    above and left; bottom and right padding are what the output size needs."""
    sub, sub_op = _patch_graph(graph, op, tuple(x.shape), out_h, out_w, pad_top, pad_left)
    w_t, b_t = graph.tensor(op.inputs[1]), graph.tensor(op.inputs[2])
    return KERNELS[op.kind](sub, sub_op, [x, w_t.data, b_t.data])


@lru_cache(maxsize=8192)
def _patch_graph(graph: Graph, op: Op, x_shape: tuple, out_h: int, out_w: int, pad_top: int,
                 pad_left: int) -> tuple[Graph, Op]:
    """Return the one-op graph and op of a patch call (few distinct ones per segment)."""
    x_t, w_t, b_t, y_t = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    a = op.attrs
    kh, kw = w_t.shape[1], w_t.shape[2]
    need_h = (out_h - 1) * a.stride_h + (kh - 1) * a.dilation_h + 1
    need_w = (out_w - 1) * a.stride_w + (kw - 1) * a.dilation_w + 1
    padding = Padding(pad_top, max(0, need_h - pad_top - x_shape[1]), pad_left,
                      max(0, need_w - pad_left - x_shape[2]))
    sub_x = replace(x_t, shape=x_shape)
    sub_y = replace(y_t, shape=(1, out_h, out_w, y_t.shape[3]))
    sub = Graph("patch", {t.name: t for t in (sub_x, w_t, b_t, sub_y)}, (), (x_t.name,),
                (y_t.name,))
    return sub, replace(op, attrs=replace(a, padding=padding))


def _add_call(graph: Graph, op: Op, unit_input: str, x: np.ndarray, y: np.ndarray):
    tensors: dict[str, Tensor] = {}
    for n in (*op.inputs, op.outputs[0]):
        t = graph.tensor(n)
        tensors[n] = replace(t, shape=(1, 1, x.shape[2], t.shape[3]))
    sub = Graph("tile", tensors, (), (), ())
    args = [x if n == unit_input else y for n in op.inputs]
    return KERNELS[op.kind](sub, op, args)


class SegmentRunner:
    """Runs one segment's entries inside `raw` (the arena bytes)."""

    def __init__(self, graph: Graph, raw: bytearray, tables: SegmentTables, stages) -> None:
        self.graph, self.raw, self.tables, self.stages = graph, raw, tables, stages
        if tables.acc >= 0:
            channels = stages[-1].in_shape[2]
            self.raw[tables.acc:tables.acc + 4 * channels] = bytes(4 * channels)

    def run(self, first: int, stop: int) -> None:
        """Run schedule entries [first, stop)."""
        for stage, kind, row in self.tables.entries[first:stop]:
            if kind == OUT:
                self._output_row(stage, row)
            else:
                self._prefetch_row(stage, row)
            last = self.tables.stages[stage]
            if last.kind == "pool" and kind == OUT and row == len(last.rows) - 1:
                self._finish_pool(stage)

    def _patch(self, t: StageTables, e: int, tile) -> np.ndarray:
        _, p0, pn, _ = t.erows[e]
        xa, xn = tile[6], tile[7]
        rows = [ring_read(self.raw, t.input, r * t.input.width + xa, xn) for r in
                range(p0, p0 + pn)]
        patch = np.stack(rows).reshape(1, pn, xn, t.input.channels)
        _put(self.raw, t.patch, patch)
        return _view(self.raw, t.patch, patch.shape).copy()

    def _produce(self, st, t: StageTables, e: int, tile, dst: int) -> None:
        """Compute the new columns of row e of E for `tile` into arena offset dst."""
        new = tile[3] - tile[5]
        patch = self._patch(t, e, tile)
        out = patch_call(self.graph, st.producer, patch, 1, new, t.erows[e][3], tile[8])
        _put(self.raw, dst, out)

    def _prefetch_row(self, i: int, e: int) -> None:
        st, t = self.stages[i], self.tables.stages[i]
        q = t.erows[e][0]
        for tile in t.tiles:
            new = tile[3] - tile[5]
            if new <= 0:
                continue
            self._produce(st, t, e, tile, t.window)
            data = _view(self.raw, t.window, (new, t.e_ring.channels)).copy()
            ring_write(self.raw, t.e_ring, q * t.e_ring.width + tile[2] + tile[5], data)

    def _output_row(self, i: int, r: int) -> None:
        st, t = self.stages[i], self.tables.stages[i]
        lo, nrows, pad_top, old = t.rows[r]
        e_c = st.e_shape[2]
        prev_w = 0
        for tile in t.tiles:
            c0, cn, ea, en, pad_left, halo = tile[:6]
            new = en - halo
            if halo:
                self._shift(t.window, nrows, prev_w, en, halo, e_c)
            for k in range(nrows):
                dst = t.window + (k * en + halo) * e_c
                row = lo + k
                if st.kind == "fused" and k >= old:
                    if new > 0:
                        self._produce(st, t, row, tile, dst)
                        q = t.erows[row][0]
                        if q >= 0:
                            data = _view(self.raw, dst, (new, e_c)).copy()
                            ring_write(self.raw, t.e_ring, q * t.e_ring.width + ea + halo, data)
                elif new > 0:
                    src = t.e_ring if st.kind == "fused" else t.input
                    index = (t.erows[row][0] if st.kind == "fused" else row) * src.width
                    _put(self.raw, dst, ring_read(self.raw, src, index + ea + halo, new))
            window = _view(self.raw, t.window, (1, nrows, en, e_c)).copy()
            self._tile_op(st, t, r, tile, window, pad_top, pad_left)
            prev_w = en

    @staticmethod
    def _shift_rows(nrows: int, old_w: int, new_w: int) -> range:
        return range(nrows) if new_w <= old_w else range(nrows - 1, -1, -1)

    def _shift(self, base: int, nrows: int, old_w: int, new_w: int, halo: int, c: int) -> None:
        """Move each window row's last `halo` columns (row stride old_w) to its start
        (row stride new_w), in an order that never overwrites a row not yet moved."""
        for k in self._shift_rows(nrows, old_w, new_w):
            src = base + (k * old_w + old_w - halo) * c
            dst = base + k * new_w * c
            self.raw[dst:dst + halo * c] = bytes(self.raw[src:src + halo * c])

    def _tile_op(self, st, t: StageTables, r: int, tile, window, pad_top, pad_left) -> None:
        c0, cn = tile[0], tile[1]
        g = self.graph
        if st.kind in ("fused", "window"):
            dw = patch_call(g, st.window_op, window, 1, cn, pad_top, pad_left)
            _put(self.raw, t.dw_out, dw)
            dw = _view(self.raw, t.dw_out, dw.shape).copy()
            y = patch_call(g, st.project, dw, 1, cn, 0, 0)
            _put(self.raw, t.out, y)
            if st.add is not None:
                x = ring_read(self.raw, t.input, r * t.input.width + c0, cn)
                _put(self.raw, t.patch, x)
                x = _view(self.raw, t.patch, (1, 1, cn, t.input.channels)).copy()
                y = _view(self.raw, t.out, y.shape).copy()
                _put(self.raw, t.out, _add_call(g, st.add, st.input, x, y))
        elif st.kind == "conv":
            _put(self.raw, t.out, patch_call(g, st.window_op, window, 1, cn, pad_top, pad_left))
        elif st.kind == "quantize":
            op = st.unit.op
            x = window.view(np.uint8) if g.tensor(op.inputs[0]).dtype.value == "uint8" \
                else window
            _put(self.raw, t.out, KERNELS[op.kind](_tile_graph(g, op, cn), op, [x]))
        else:  # pool: add the tile's pixels to the int32 sums
            acc = np.frombuffer(self.raw, np.int32, st.in_shape[2], self.tables.acc)
            total = acc.astype(np.int64) + window.reshape(-1, st.in_shape[2]).astype(
                np.int64).sum(axis=0)
            acc[:] = total.astype(np.int32)
            return
        y = _view(self.raw, t.out, (cn, t.output.channels)).copy()
        ring_write(self.raw, t.output, r * t.output.width + c0, y)

    def _finish_pool(self, i: int) -> None:
        st = self.stages[i]
        op = st.unit.op
        c = st.in_shape[2]
        total = np.frombuffer(self.raw, np.int32, c, self.tables.acc).astype(np.int64)
        if st.unit.op.kind.value == "MEAN":
            out = mean_finish(self.graph, op, total.reshape(1, c))
        else:
            count = st.in_shape[0] * st.in_shape[1]
            out = average_pool_finish(self.graph, op, total, count)
        _put(self.raw, self.tables.stages[i].output.offset, out)


def _tile_graph(graph: Graph, op: Op, pixels: int) -> Graph:
    tensors = {}
    for n in (*op.inputs, op.outputs[0]):
        t = graph.tensor(n)
        tensors[n] = replace(t, shape=(1, 1, pixels, t.shape[3]))
    return Graph("tile", tensors, (), (), ())
