"""Lowering of the family's head and edge operators to the numbers their C calls need.

One function per operator kind, registered in `FAMILY_TEMPLATES` (merged into
`lower.LAYER_TEMPLATES`). Every requantisation comes from mnv2gen.quant/quant_params and
every index table from mnv2gen.reference.spatial, the functions the NumPy reference runs.
`broadcast_geometry` and `transpose_geometry` collapse N-D operands to the 4-D index
spaces the kernels take; `codegen.support` refuses (before planning) what they cannot.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mnv2gen import quant, quant_params
from mnv2gen.codegen.consts import ConstPool
from mnv2gen.ir import DType, Graph, OpKind
from mnv2gen.planner.plan import Plan, UnitPlan
from mnv2gen.reference import spatial

_CTYPES = {DType.INT8: "int8_t", DType.UINT8: "uint8_t", DType.INT32: "int32_t",
           DType.INT64: "int64_t", DType.FLOAT32: "float"}


def dims4(shape) -> list[int]:
    """Return a shape of rank <= 4 as NHWC dims (leading 1s)."""
    return [1] * (4 - len(shape)) + list(shape)


def operand(plan: Plan, pool: ConstPool, name: str, symbol: str) -> str:
    """Return the C expression of an operand: its arena address, or its const array."""
    t = plan.graph.tensor(name)
    if t.is_const:
        return pool.add(symbol, t.data, t.dtype.np, f"constant operand {t.shape}")
    return f"mnv2_arena + {plan.offset(name)}"


def _strides(shape: tuple[int, ...]) -> list[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]


def broadcast_geometry(out_shape, shape_1, shape_2) -> tuple[list, list, list] | None:
    """Return (dims, stride_1, stride_2) of a broadcast binary op in 4 dimensions, or None
    when it needs more. Dimensions of size 1 are dropped; neighbours that both inputs
    traverse the same way (contiguously, or both broadcast) are merged."""
    rank = len(out_shape)
    dims, s1, s2 = [], [], []
    pad = [(1,) * (rank - len(s)) + tuple(s) for s in (shape_1, shape_2)]
    own = [_strides(p) for p in pad]
    for axis, extent in enumerate(out_shape):
        if extent == 1:
            continue
        dims.append(extent)
        s1.append(0 if pad[0][axis] == 1 else own[0][axis])
        s2.append(0 if pad[1][axis] == 1 else own[1][axis])
    i = len(dims) - 2
    while i >= 0:  # merge dim i into i + 1 when both inputs step through it contiguously
        if all(s[i] == s[i + 1] * dims[i + 1] for s in (s1, s2)):
            dims[i + 1] *= dims[i]
            del dims[i], s1[i], s2[i]
        i -= 1
    if len(dims) > 4:
        return None
    lead = 4 - len(dims)
    return [1] * lead + dims, [0] * lead + s1, [0] * lead + s2


def transpose_geometry(shape, perm) -> tuple[list, list] | None:
    """Return (4-D input dims, 4-D perm) of a transpose with unit axes dropped and axes
    that stay neighbours merged, or None when more than 4 remain."""
    order = [a for a in perm if shape[a] != 1]
    groups: list[list[int]] = []
    for a in order:  # runs of consecutive input axes move together
        if groups and groups[-1][-1] + 1 == a:
            groups[-1].append(a)
        else:
            groups.append([a])
    if len(groups) > 4:
        return None
    by_input = sorted(groups, key=lambda g: g[0])
    in_dims = [math.prod(shape[a] for a in g) for g in by_input]
    new_perm = [by_input.index(g) for g in groups]
    lead = 4 - len(groups)
    return [1] * lead + in_dims, list(range(lead)) + [p + lead for p in new_perm]


def _pointers(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op = up.unit.op
    return {"input": operand(plan, pool, op.inputs[0], f"{up.name}_input"),
            "output": f"mnv2_arena + {plan.offset(op.outputs[0])}"}


def lower_binary(plan: Plan, up: UnitPlan, pool: ConstPool) -> tuple[str, dict]:
    """Return ("binary.c.j2", context) of MUL, SUB or a broadcast ADD."""
    graph, op = plan.graph, up.unit.op
    t1, t2, y = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    act_min, act_max = quant.activation_range(op.attrs.activation, y.scale, y.zero_point)
    if op.kind is OpKind.MUL:
        m, s = quant_params.mul_multiplier(t1.scale, t2.scale, y.scale)
        params, ptype, function = ([-t1.zero_point, -t2.zero_point, y.zero_point, m, s,
                                    act_min, act_max], "mnv2_mul_params", "mnv2_mul_s8")
    else:
        p = (quant_params.sub_params if op.kind is OpKind.SUB else quant.add_params)(
            t1.scale, t2.scale, y.scale)
        params = [-t1.zero_point, p.input1_multiplier, p.input1_shift, -t2.zero_point,
                  p.input2_multiplier, p.input2_shift, p.left_shift, y.zero_point,
                  p.output_multiplier, p.output_shift, act_min, act_max]
        ptype = "mnv2_add_params"
        function = "mnv2_sub_s8" if op.kind is OpKind.SUB else "mnv2_add_broadcast_s8"
    dims, s1, s2 = broadcast_geometry(y.shape, t1.shape, t2.shape)
    return "binary.c.j2", {
        "function": function, "params_type": ptype, "params": params,
        "dims": dims, "stride_1": s1, "stride_2": s2,
        "input_1": operand(plan, pool, op.inputs[0], f"{up.name}_input_1"),
        "input_2": operand(plan, pool, op.inputs[1], f"{up.name}_input_2"),
        "output": f"mnv2_arena + {plan.offset(op.outputs[0])}"}


def _lower_hard_swish(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    p = quant_params.hard_swish_params(x.scale, x.zero_point, y.scale, y.zero_point)
    return {**_pointers(plan, up, pool), "function": "mnv2_hard_swish_s8",
            "params_type": "mnv2_hard_swish_params", "count": y.num_elements,
            "params": [p.input_zero_point, p.output_zero_point, p.reluish_multiplier,
                       p.reluish_exponent, p.output_multiplier, p.output_exponent]}


def _lower_logistic(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    x = graph.tensor(op.inputs[0])
    p = quant_params.logistic_params(x.scale, x.zero_point)
    return {**_pointers(plan, up, pool), "function": "mnv2_logistic_s8",
            "params_type": "mnv2_logistic_params", "count": x.num_elements,
            "params": [p.input_zero_point, p.input_multiplier, p.input_left_shift,
                       p.input_range_radius]}


def _lower_resize(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    a = op.attrs
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    context = {**_pointers(plan, up, pool), "input_dims": list(x.shape),
               "output_dims": list(y.shape), "bilinear": int(op.kind is OpKind.RESIZE_BILINEAR)}
    _, in_h, in_w, _ = x.shape
    if op.kind is OpKind.RESIZE_BILINEAR:
        context["params"] = [spatial.bilinear_scale_10(in_h, a.height, a.align_corners),
                             spatial.bilinear_scale_10(in_w, a.width, a.align_corners),
                             int(a.half_pixel_centers)]
        context["rows"] = context["cols"] = ""
    else:
        context["params"] = []
        context["rows"] = pool.add(f"{up.name}_rows", spatial.nearest_indices(
            a.height, in_h, a.align_corners, a.half_pixel_centers), np.int32,
            "input row of every output row")
        context["cols"] = pool.add(f"{up.name}_cols", spatial.nearest_indices(
            a.width, in_w, a.align_corners, a.half_pixel_centers), np.int32,
            "input column of every output column")
    return context


def _lower_max_pool(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    a, y = op.attrs, graph.tensor(op.outputs[0])
    act_min, act_max = quant.activation_range(a.activation, y.scale, y.zero_point)
    return {**_pointers(plan, up, pool), "function": "mnv2_max_pool_s8",
            "params": [a.filter_h, a.filter_w, a.stride_h, a.stride_w, a.padding.top,
                       a.padding.left, act_min, act_max],
            "input_dims": dims4(graph.tensor(op.inputs[0]).shape), "output_dims": dims4(y.shape),
            "scratch": "0", "scratch_bytes": 0}


def _lower_concatenation(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    y = graph.tensor(op.outputs[0])
    axis, size = op.attrs.axis, y.dtype.size_bytes
    outer = math.prod(y.shape[:axis])
    out_block = math.prod(y.shape[axis:]) * size
    parts, start = [], 0
    for i, name in enumerate(op.inputs):
        block = math.prod(graph.tensor(name).shape[axis:]) * size
        parts.append({"input": operand(plan, pool, name, f"{up.name}_input_{i}"),
                      "output": f"mnv2_arena + {plan.offset(op.outputs[0]) + start}",
                      "count": outer, "block": block, "stride": out_block})
        start += block
    return {"parts": parts}


def _lower_arg_max(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    axis = op.attrs.axis
    return {**_pointers(plan, up, pool), "output_ctype": _CTYPES[y.dtype],
            "function": "mnv2_arg_max_s8_s64" if y.dtype is DType.INT64
            else "mnv2_arg_max_s8_s32",
            "outer": math.prod(x.shape[:axis]), "axis_size": x.shape[axis],
            "inner": math.prod(x.shape[axis + 1:])}


def _lower_transpose(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    in_dims, perm = transpose_geometry(graph.tensor(op.inputs[0]).shape, op.attrs.perm)
    return {**_pointers(plan, up, pool), "input_dims": in_dims, "perm": perm}


def _lower_pad(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    graph, op = plan.graph, up.unit.op
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    lead = 4 - len(x.shape)
    pads = [(0, 0)] * lead + [tuple(p) for p in op.attrs.paddings]
    return {**_pointers(plan, up, pool), "input_dims": dims4(x.shape),
            "before": [b for b, _ in pads], "after": [a for _, a in pads],
            "value": y.zero_point if y.quant is not None else 0}


def output_ctype(graph: Graph, name: str) -> str:
    """Return the C element type of a tensor."""
    return _CTYPES[graph.tensor(name).dtype]


# IR kind -> (template under templates/ops/, lowering)
FAMILY_TEMPLATES: dict[OpKind, tuple[str, Callable]] = {
    OpKind.MUL: ("binary.c.j2", lower_binary),
    OpKind.SUB: ("binary.c.j2", lower_binary),
    OpKind.HARD_SWISH: ("activation.c.j2", _lower_hard_swish),
    OpKind.LOGISTIC: ("activation.c.j2", _lower_logistic),
    OpKind.RESIZE_BILINEAR: ("resize.c.j2", _lower_resize),
    OpKind.RESIZE_NEAREST_NEIGHBOR: ("resize.c.j2", _lower_resize),
    OpKind.MAX_POOL_2D: ("avgpool.c.j2", _lower_max_pool),
    OpKind.CONCATENATION: ("concat.c.j2", _lower_concatenation),
    OpKind.ARG_MAX: ("arg_max.c.j2", _lower_arg_max),
    OpKind.TRANSPOSE: ("transpose.c.j2", _lower_transpose),
    OpKind.PAD: ("pad.c.j2", _lower_pad),
}
