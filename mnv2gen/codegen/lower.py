"""Lower each planned unit to the numbers its C call needs (the templates only substitute).

Every requantisation pair comes from mnv2gen.quant, the same functions the NumPy reference
uses, so the C code and the reference cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mnv2gen import quant
from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.lower_family import FAMILY_TEMPLATES, lower_binary
from mnv2gen.codegen.lower_segment import lower_segment
from mnv2gen.codegen.lower_squeeze import act_numbers, excite_steps, se_numbers
from mnv2gen.errors import UnsupportedError, file_label
from mnv2gen.ir import DType, Graph, Op, OpKind
from mnv2gen.planner.plan import Plan, SegmentPlan, UnitPlan
from mnv2gen.planner.schedule import FusedUnit


def _dims(shape) -> list[int]:
    shape = tuple(shape)
    return [1] * (4 - len(shape)) + list(shape) if len(shape) <= 4 else list(shape)


def _conv_numbers(graph: Graph, op: Op, pool: ConstPool, symbol: str) -> dict:
    """Return params, dims and const symbols of a CONV_2D or DEPTHWISE_CONV_2D."""
    x, w, b, y = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    a = op.attrs
    out_c = y.shape[3]
    mult, shift = quant.per_channel_multipliers(x.scale, w.quant.scale, y.scale, out_c)
    act_min, act_max = quant.activation_range(a.activation, y.scale, y.zero_point)
    return {
        "params": [-x.zero_point, y.zero_point, a.stride_h, a.stride_w, a.padding.top,
                   a.padding.left, a.dilation_h, a.dilation_w, act_min, act_max],
        "filter_dims": list(w.shape),
        "filter": pool.add(f"{symbol}_filter", w.data, np.int8, f"{op.name} weights {w.shape}"),
        "bias": pool.add(f"{symbol}_bias", b.data, np.int32, f"{op.name} bias"),
        "multiplier": pool.add(f"{symbol}_multiplier", mult, np.int32),
        "shift": pool.add(f"{symbol}_shift", shift, np.int32),
        "kernel": None,  # a specialised kernel (generated backend, segments) or none
        "window_kernel": None,  # likewise, one output row of a tile
        "band_kernel": None,  # likewise, whole-width rows of a fused unit's band
    }


def _kernel_scratch(plan: Plan, up: UnitPlan) -> tuple[str, int]:
    size = up.scratch.get("kernel", 0)
    return (f"mnv2_arena + {plan.offset(f'{up.name}.kernel')}" if size else "0"), size


def _tensor(plan: Plan, name: str) -> str:
    return f"mnv2_arena + {plan.offset(name)}"


def _lower_conv(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op, graph = up.unit.op, plan.graph
    scratch, scratch_bytes = _kernel_scratch(plan, up)
    return {
        **_conv_numbers(graph, op, pool, up.name),
        "function": "mnv2_conv_s8" if op.kind is OpKind.CONV_2D else "mnv2_depthwise_conv_s8",
        "input_dims": _dims(graph.tensor(op.inputs[0]).shape),
        "output_dims": _dims(graph.tensor(op.outputs[0]).shape),
        "input": _tensor(plan, op.inputs[0]), "output": _tensor(plan, op.outputs[0]),
        "scratch": scratch, "scratch_bytes": scratch_bytes,
    }


def _lower_add(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict | tuple[str, dict]:
    op, graph = up.unit.op, plan.graph
    if len({graph.tensor(n).shape for n in op.inputs}) > 1 or any(
            graph.tensor(n).is_const for n in op.inputs):
        return lower_binary(plan, up, pool)
    return {"params": add_params(graph, op, op.inputs[0]),
            "input_1": _tensor(plan, op.inputs[0]), "input_2": _tensor(plan, op.inputs[1]),
            "output": _tensor(plan, op.outputs[0]),
            "count": graph.tensor(op.outputs[0]).num_elements}


def add_params(graph: Graph, op: Op, first: str) -> list[int]:
    """Return mnv2_add_params for ADD `op` with `first` as input 1 (ADD is symmetric)."""
    second = op.inputs[1] if op.inputs[0] == first else op.inputs[0]
    t1, t2, y = graph.tensor(first), graph.tensor(second), graph.tensor(op.outputs[0])
    p = quant.add_params(t1.scale, t2.scale, y.scale)
    act_min, act_max = quant.activation_range(op.attrs.activation, y.scale, y.zero_point)
    return [-t1.zero_point, p.input1_multiplier, p.input1_shift, -t2.zero_point,
            p.input2_multiplier, p.input2_shift, p.left_shift, y.zero_point,
            p.output_multiplier, p.output_shift, act_min, act_max]


def _lower_avgpool(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op, graph = up.unit.op, plan.graph
    a, y = op.attrs, graph.tensor(op.outputs[0])
    act_min, act_max = quant.activation_range(a.activation, y.scale, y.zero_point)
    scratch, scratch_bytes = _kernel_scratch(plan, up)
    return {"function": "mnv2_avgpool_s8",
            "params": [a.filter_h, a.filter_w, a.stride_h, a.stride_w, a.padding.top,
                       a.padding.left, act_min, act_max],
            "input_dims": _dims(graph.tensor(op.inputs[0]).shape), "output_dims": _dims(y.shape),
            "input": _tensor(plan, op.inputs[0]), "output": _tensor(plan, op.outputs[0]),
            "scratch": scratch, "scratch_bytes": scratch_bytes}


def _lower_mean(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op, graph = up.unit.op, plan.graph
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    axes = op.attrs.axes
    if list(axes) != list(range(axes[0], axes[-1] + 1)):
        raise UnsupportedError(f"{op.describe()}: MEAN over non-adjacent axes {axes}",
                               "code generation supports MEAN over one run of adjacent axes")
    outer = math.prod(x.shape[:axes[0]])
    reduce = math.prod(x.shape[axes[0]:axes[-1] + 1])
    inner = math.prod(x.shape[axes[-1] + 1:])
    mult, shift = quant.mean_multiplier(x.scale, y.scale, reduce)
    return {"input": _tensor(plan, op.inputs[0]), "output": _tensor(plan, op.outputs[0]),
            "outer": outer, "reduce": reduce, "inner": inner, "input_offset": -x.zero_point,
            "multiplier": mult, "shift": shift, "output_offset": y.zero_point}


def _lower_fully_connected(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op, graph = up.unit.op, plan.graph
    x, w, b, y = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    out_f, in_f = w.shape
    if w.quant.per_channel:
        mult, shift = quant.per_channel_multipliers(x.scale, w.quant.scale, y.scale, out_f)
    else:
        m, s = quant.fc_per_tensor_multiplier(x.scale, w.scale, y.scale)
        mult, shift = [m], [s]
    act_min, act_max = quant.activation_range(op.attrs.activation, y.scale, y.zero_point)
    scratch, scratch_bytes = _kernel_scratch(plan, up)
    return {"params": [-x.zero_point, -w.quant.zero_point[0], y.zero_point, act_min, act_max],
            "per_channel": int(w.quant.per_channel), "batches": x.num_elements // in_f,
            "in_features": in_f, "out_features": out_f,
            "filter": pool.add(f"{up.name}_filter", w.data, np.int8, f"{op.name} weights"),
            "bias": pool.add(f"{up.name}_bias", b.data, np.int32, f"{op.name} bias"),
            "multiplier": pool.add(f"{up.name}_multiplier", mult, np.int32),
            "shift": pool.add(f"{up.name}_shift", shift, np.int32),
            "input": _tensor(plan, op.inputs[0]), "output": _tensor(plan, op.outputs[0]),
            "scratch": scratch, "scratch_bytes": scratch_bytes}


def _lower_softmax(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op, graph = up.unit.op, plan.graph
    x = graph.tensor(op.inputs[0])
    mult, left_shift = quant.preprocess_softmax_scaling(op.attrs.beta, x.scale)
    row = x.shape[-1]
    return {"input": _tensor(plan, op.inputs[0]), "output": _tensor(plan, op.outputs[0]),
            "rows": x.num_elements // row, "row_size": row, "multiplier": mult,
            "left_shift": left_shift, "diff_min": -quant.calculate_input_radius(5, left_shift)}


def _lower_quantize(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op, graph = up.unit.op, plan.graph
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    functions = {(DType.UINT8, DType.INT8): "mnv2_requantize_u8_s8",
                 (DType.INT8, DType.INT8): "mnv2_requantize_s8",
                 (DType.INT8, DType.UINT8): "mnv2_requantize_s8_u8"}
    if (x.dtype, y.dtype) not in functions:
        raise UnsupportedError(
            f"{op.describe()}: QUANTIZE {x.dtype.value} -> {y.dtype.value} inside the model",
            "generated code requantises uint8/int8 -> int8 and int8 -> uint8; float edges are "
            "left to the caller")
    mult, shift = quant.requantize_multiplier(x.scale, y.scale)
    return {"function": functions[x.dtype, y.dtype],
            "input_ctype": "uint8_t" if x.dtype is DType.UINT8 else "int8_t",
            "output_ctype": "uint8_t" if y.dtype is DType.UINT8 else "int8_t",
            "input": _tensor(plan, op.inputs[0]), "output": _tensor(plan, op.outputs[0]),
            "input_offset": -x.zero_point, "multiplier": mult, "shift": shift,
            "output_offset": y.zero_point, "count": y.num_elements}


def _lower_reshape(plan: Plan, up: UnitPlan, pool: ConstPool) -> dict:
    op = up.unit.op
    if plan.offset(op.inputs[0]) != plan.offset(op.outputs[0]):
        return {"needs_copy": True, "input": _tensor(plan, op.inputs[0]),
                "output": _tensor(plan, op.outputs[0]),
                "count": plan.graph.tensor(op.outputs[0]).size_bytes}
    return {"needs_copy": False}


# IR kind -> (template under templates/ops/, lowering)
LAYER_TEMPLATES: dict[OpKind, tuple[str, Callable[[Plan, UnitPlan, ConstPool], dict]]] = {
    OpKind.CONV_2D: ("conv.c.j2", _lower_conv),
    OpKind.DEPTHWISE_CONV_2D: ("conv.c.j2", _lower_conv),
    OpKind.ADD: ("add.c.j2", _lower_add),
    OpKind.AVERAGE_POOL_2D: ("avgpool.c.j2", _lower_avgpool),
    OpKind.MEAN: ("mean.c.j2", _lower_mean),
    OpKind.FULLY_CONNECTED: ("fully_connected.c.j2", _lower_fully_connected),
    OpKind.SOFTMAX: ("softmax.c.j2", _lower_softmax),
    OpKind.QUANTIZE: ("quantize.c.j2", _lower_quantize),
    OpKind.RESHAPE: ("reshape.c.j2", _lower_reshape),
    **FAMILY_TEMPLATES,
}


def lower_layer(plan: Plan, up: UnitPlan, pool: ConstPool) -> tuple[str, dict]:
    """Return (template name under templates/ops/, context) of a layer unit's C code."""
    op = up.unit.op
    if op.kind not in LAYER_TEMPLATES:
        raise UnsupportedError(
            f"{file_label(plan.graph.name)}: {op.describe()} cannot be generated as C",
            f"code generation supports {', '.join(k.value for k in LAYER_TEMPLATES)} "
            "(float QUANTIZE/DEQUANTIZE only at the model's edges)")
    template, lower = LAYER_TEMPLATES[op.kind]
    result = lower(plan, up, pool)  # a lowering may pick another template (broadcast ADD)
    return result if isinstance(result, tuple) else (template, result)


def lower_unit(plan: Plan, up: UnitPlan | SegmentPlan, pool: ConstPool) -> tuple[str, dict]:
    """Return (template name under templates/ops/, context) of any plan step on the portable
    or CMSIS-NN kernels, adding its constants to `pool`."""
    if isinstance(up, SegmentPlan):
        return lower_segment(plan, up, pool, _conv_numbers, add_params)
    return (lower_fused if isinstance(up.unit, FusedUnit) else lower_layer)(plan, up, pool)


def _group_major(filter_data: np.ndarray, groups, axis: int) -> np.ndarray:
    """Return the filter with each channel group's slice stored contiguously."""
    return np.concatenate([np.take(filter_data, range(a, b), axis=axis).reshape(-1)
                           for a, b in groups])


def band_table(up: UnitPlan) -> list[list[int]]:
    """Return the rows of a fused unit's mnv2_band table (mnv2_fused.h field order)."""
    rows, previous = [], None
    for b in up.choice.bands:
        keep_from = b.window_rows[0] - previous[0] if b.keep_rows else 0
        rows.append([b.out_rows[0], b.out_rows[1] - b.out_rows[0], b.window_rows[0],
                     b.window_rows[1] - b.window_rows[0], b.window_pad_top, keep_from,
                     b.keep_rows, b.new_rows[1] - b.new_rows[0], b.producer_rows[0],
                     b.producer_rows[1] - b.producer_rows[0], b.producer_pad_top])
        previous = b.window_rows
    return rows


def lower_fused(plan: Plan, up: UnitPlan, pool: ConstPool, conv_numbers=None
                ) -> tuple[str, dict]:
    """Return ("fused.c.j2", context) of a fused unit: descriptor numbers and band table.

    conv_numbers: what gives a convolution's descriptor numbers (default _conv_numbers;
    the generated backend's adds its kernel entry points)."""
    conv_numbers = conv_numbers or _conv_numbers
    graph, unit, choice = plan.graph, up.unit, up.choice
    assert isinstance(unit, FusedUnit)
    grouped = len(choice.groups) > 1
    parts: dict[str, dict | None] = {"producer": None}
    for role, op in (("producer", unit.producer), ("depthwise", unit.depthwise),
                     ("project", unit.project)):
        if op is None:
            continue
        numbers = conv_numbers(graph, op, pool, f"{up.name}_{role}")
        if grouped and role in ("depthwise", "project"):
            w = graph.tensor(op.inputs[1]).data
            relaid = _group_major(w, choice.groups, 3)
            numbers["filter"] = pool.add(f"{up.name}_{role}_filter_groups", relaid, np.int8,
                                         f"{op.name} weights, channel-group major")
        parts[role] = numbers
    offset = plan.offset
    kernel, kernel_bytes = up.scratch.get("kernel", 0), up.scratch.get("kernel", 0)
    bands = band_table(up)
    producer_kind = 0 if unit.producer is None else (
        1 if unit.producer.kind is OpKind.CONV_2D else 2)
    scratch_offsets = {k: (offset(f"{up.name}.{k}") if k in up.scratch else 0)
                       for k in ("window", "dw_out", "shortcut", "acc", "kernel")}
    context = {
        "x_offset": offset(unit.input), "y_offset": offset(unit.output),
        "window_offset": scratch_offsets["window"], "dw_out_offset": scratch_offsets["dw_out"],
        "shortcut_offset": scratch_offsets["shortcut"], "acc_offset": scratch_offsets["acc"],
        "scratch_offset": scratch_offsets["kernel"] if kernel else 0,
        "scratch_bytes": kernel_bytes,
        "x_dims": _dims(graph.tensor(unit.input).shape),
        "e_dims": _dims(graph.tensor(unit.expanded).shape),
        "y_dims": _dims(graph.tensor(unit.output).shape),
        "producer_kind": producer_kind, "parts": parts,
        "has_add": int(unit.add is not None),
        "add": add_params(graph, unit.add, unit.input) if unit.add else [0] * 12,
        "groups": len(choice.groups),
        "group_start": [a for a, _ in choice.groups] + [choice.groups[-1][1]],
        "bands": bands, "rows": choice.chunking.rows,
        "producer_act": act_numbers(graph, unit.producer_act),
        "depthwise_act": act_numbers(graph, unit.depthwise_act),
        "se": se_numbers(plan, up), "squeeze": unit.se is not None,
        "inner_steps": excite_steps(plan, up, pool, lower_layer),
    }
    return "fused.c.j2", context
