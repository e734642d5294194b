"""Work counts of each plan step, the inputs of the instruction estimate.

Every count mirrors what the generated code executes for the step: the kernel calls a
fused unit makes per band and channel group (mnv2_fused.c), the rows its producer
computes (halo rows again for every group), the bytes its sliding window moves; for a
depth-first segment the calls and copies of every tile (mnv2_segment.c). The
calibration (targets/calibration.toml) holds one coefficient per count, fitted on
QEMU-measured steps of synthesized models by benchmarks/calibrate.py.
"""

from __future__ import annotations

from collections import Counter

from mnv2gen.ir import Graph, Op, OpKind
from mnv2gen.planner.plan import Plan, SegmentPlan, UnitPlan
from mnv2gen.planner.schedule import FusedUnit, LayerUnit
from mnv2gen.planner.segment_cost import COPY_CALL, MOVE_COST, deep_macs, segment_counts

FEATURES = (
    "units", "calls",
    "pw_macs", "pw_outputs",                         # 1x1 convolutions
    "pw_deep_macs",                                   # of them: inputs not widened once
    "conv_macs", "conv_outputs", "conv_taps",         # k x k convolutions (the stem)
    "dw3_macs", "dwk_macs", "dw_outputs", "dw_pixels",  # depthwise, 3x3 and other k
    "fc_macs", "fc_outputs",
    "acc_macs", "acc_outputs",                        # channel-group projection (int32)
    "add_elements", "pool_elements", "softmax_elements", "quantize_elements",
    "move_bytes",
)


def _conv_counts(graph: Graph, op: Op, out_rows: int, out_channels: int | None = None
                 ) -> Counter:
    """Return the counts of one conv/depthwise call computing `out_rows` rows of its output
    (`out_channels` of them when only a channel slice is computed)."""
    _, _, width, channels = graph.tensor(op.outputs[0]).shape
    channels = channels if out_channels is None else out_channels
    _, kh, kw, in_c = graph.tensor(op.inputs[1]).shape
    pixels = out_rows * width
    outputs = pixels * channels
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        kind = "dw3_macs" if (kh, kw) == (3, 3) else "dwk_macs"
        return Counter({kind: outputs * kh * kw, "dw_outputs": outputs, "dw_pixels": pixels})
    if (kh, kw) == (1, 1):
        return Counter({"pw_macs": outputs * in_c, "pw_outputs": outputs,
                        "pw_deep_macs": deep_macs(outputs, in_c)})
    return Counter({"conv_macs": outputs * kh * kw * in_c, "conv_outputs": outputs,
                    "conv_taps": outputs * kh * kw})


def _act_counts(graph: Graph, op: Op | None, elements: int) -> Counter:
    """Return the counts of an activation op of a fused unit over `elements` values."""
    if op is None or not elements:
        return Counter()
    return Counter({_FAMILY_COUNTS[op.kind][0]: elements, "calls": 1})


def _front_counts(graph: Graph, unit: FusedUnit, band, groups, width_e: int,
                  width_y: int) -> Counter:
    """Return the counts of one band's producer, depthwise and their activation ops."""
    counts: Counter = Counter()
    out_rows = band.out_rows[1] - band.out_rows[0]
    new_rows = band.new_rows[1] - band.new_rows[0]
    for lo, hi in groups:
        if unit.producer is not None and new_rows:
            counts += _conv_counts(graph, unit.producer, new_rows, hi - lo)
            counts += _act_counts(graph, unit.producer_act, new_rows * width_e * (hi - lo))
            counts["calls"] += 1
        channels = (hi - lo) * unit.depthwise.attrs.depth_multiplier
        counts += _conv_counts(graph, unit.depthwise, out_rows, channels)
        counts += _act_counts(graph, unit.depthwise_act, out_rows * width_y * channels)
        counts["calls"] += 1
    if band.keep_rows:
        counts["move_bytes"] += band.keep_rows * width_e * graph.tensor(unit.expanded).shape[3]
        counts["calls"] += 1
    return counts


def _fused_counts(plan: Plan, up: UnitPlan) -> Counter:
    """Return the counts of a fused unit as mnv2_fused.c runs it: for a squeeze-excite
    unit the first pass (front and channel sums), the MEAN and excitation ops, then the
    second pass (the front again unless materialised, the scale by the vector)."""
    graph, unit, choice = plan.graph, up.unit, up.choice
    assert isinstance(unit, FusedUnit)
    counts: Counter = Counter()
    groups = choice.groups
    _, _, width_e, _ = graph.tensor(unit.expanded).shape
    _, _, width_y, channels_y = graph.tensor(unit.output).shape
    materialise = unit.se is not None and choice.chunking.squeeze == "materialise"
    if unit.se is not None:
        features = graph.tensor(unit.features).shape[3]
        for band in choice.bands:
            counts += _front_counts(graph, unit, band, groups, width_e, width_y)
            counts["pool_elements"] += (band.out_rows[1] - band.out_rows[0]) * width_y * features
        counts["calls"] += 1  # the MEAN from the sums
        for op in unit.se.excite:
            counts += _layer_counts(plan, UnitPlan(up.step, LayerUnit(up.name, op), None))
    for band in choice.bands:
        out_rows = band.out_rows[1] - band.out_rows[0]
        pixels = out_rows * width_y
        if not materialise:
            counts += _front_counts(graph, unit, band, groups, width_e, width_y)
        if unit.se is not None:
            counts["add_elements"] += pixels * graph.tensor(unit.features).shape[3]
            counts["calls"] += 1
        if len(groups) > 1:
            counts["acc_macs"] += pixels * graph.tensor(unit.expanded).shape[3] * channels_y
            counts["acc_outputs"] += pixels * channels_y
            counts["move_bytes"] += pixels * channels_y * 4  # the accumulator memset
            counts["calls"] += len(groups) + 1
        else:
            counts += _conv_counts(graph, unit.project, out_rows)
            counts["calls"] += 1
        if unit.add is not None:
            counts["add_elements"] += pixels * channels_y
            counts["calls"] += 1
    return counts


# kind -> (the calibrated count its per-element work resembles, which tensor it counts):
# elementwise arithmetic like ADD, fixed-point activations like QUANTIZE's requantisation,
# window and reduction kernels like pooling, copies and gathers as moved bytes. Until
# benchmarks/calibrate.py measures them these are approximations of their cost.
_FAMILY_COUNTS = {
    OpKind.MUL: ("add_elements", "output"), OpKind.SUB: ("add_elements", "output"),
    OpKind.HARD_SWISH: ("quantize_elements", "output"),
    OpKind.LOGISTIC: ("softmax_elements", "output"),
    OpKind.MAX_POOL_2D: ("pool_elements", "input"), OpKind.ARG_MAX: ("pool_elements", "input"),
    OpKind.RESIZE_BILINEAR: ("pool_elements", "output"),
    OpKind.RESIZE_NEAREST_NEIGHBOR: ("move_bytes", "output"),
    OpKind.CONCATENATION: ("move_bytes", "output"), OpKind.TRANSPOSE: ("move_bytes", "output"),
    OpKind.PAD: ("move_bytes", "output"),
}


def _layer_counts(plan: Plan, up: UnitPlan) -> Counter:
    graph, op = plan.graph, up.unit.op
    out = graph.tensor(op.outputs[0])
    kind = op.kind
    if kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
        counts = _conv_counts(graph, op, out.shape[1])
    elif kind is OpKind.FULLY_CONNECTED:
        in_features = graph.tensor(op.inputs[1]).shape[1]
        counts = Counter({"fc_macs": out.num_elements * in_features,
                          "fc_outputs": out.num_elements})
    elif kind is OpKind.ADD:
        counts = Counter({"add_elements": out.num_elements})
    elif kind in (OpKind.MEAN, OpKind.AVERAGE_POOL_2D):
        counts = Counter({"pool_elements": graph.tensor(op.inputs[0]).num_elements})
    elif kind is OpKind.SOFTMAX:
        counts = Counter({"softmax_elements": out.num_elements})
    elif kind is OpKind.QUANTIZE:
        counts = Counter({"quantize_elements": out.num_elements})
    elif kind is OpKind.RESHAPE:
        if plan.offset(op.inputs[0]) == plan.offset(op.outputs[0]):
            return Counter({"units": 1})
        counts = Counter({"move_bytes": out.size_bytes})
    elif kind in _FAMILY_COUNTS:  # the family's kernels, priced by their nearest relative
        feature, operand = _FAMILY_COUNTS[kind]
        counts = Counter({feature: graph.tensor(op.inputs[0] if operand == "input"
                                                else op.outputs[0]).num_elements
                          * (out.dtype.size_bytes if feature == "move_bytes" else 1)})
    else:
        counts = Counter()
    counts["calls"] += 1
    return counts


def _segment_counts(plan: Plan, seg: SegmentPlan) -> Counter:
    """Return a segment's counts (mnv2gen.planner.segment_cost, what mnv2_segment.c runs);
    its copy calls count as the bytes the planner prices them at (no coefficient of
    their own in the calibration)."""
    shape = seg.shape
    counts = segment_counts(plan.graph, shape.stages, shape.widths)
    copies = counts.pop("copy_calls", 0)
    counts["move_bytes"] += int(copies * COPY_CALL / MOVE_COST)
    return counts


def step_features(plan: Plan, up: UnitPlan | SegmentPlan) -> dict[str, int]:
    """Return the work counts (FEATURES, zeros included) of one plan step."""
    if isinstance(up, SegmentPlan):
        counts = _segment_counts(plan, up)
    else:
        counts = (_fused_counts(plan, up) if isinstance(up.unit, FusedUnit)
                  else _layer_counts(plan, up))
    counts["units"] = 1
    return {name: int(counts.get(name, 0)) for name in FEATURES}


def plan_features(plan: Plan) -> list[dict[str, int]]:
    """Return step_features for every step of `plan`, in order."""
    return [step_features(plan, up) for up in plan.units]


def total_features(plan: Plan) -> dict[str, int]:
    """Return the work counts of the whole plan (the sum over its steps)."""
    totals = Counter()
    for features in plan_features(plan):
        totals.update(features)
    return {name: int(totals.get(name, 0)) for name in FEATURES}


def executed_macs(features: dict[str, int]) -> int:
    """Return the multiply-accumulates the plan executes (halo rows recomputed by channel
    groups included)."""
    return sum(v for k, v in features.items() if k.endswith("_macs"))


CODE_FEATURES = ("base", "fused_units", "layer_units", "bands", "has_fused", "has_groups",
                 "has_add", "has_avgpool", "has_mean", "has_fc", "has_softmax", "has_quantize",
                 "gen_pw", "gen_dw", "gen_conv", "gen_other")
_KIND_FLAGS = {OpKind.ADD: "has_add", OpKind.AVERAGE_POOL_2D: "has_avgpool",
               OpKind.MEAN: "has_mean", OpKind.FULLY_CONNECTED: "has_fc",
               OpKind.SOFTMAX: "has_softmax", OpKind.QUANTIZE: "has_quantize"}


def _instance_counts(plan: Plan) -> Counter:
    """Return the generated backend's kernel instances per kind (gen_* code features)."""
    from mnv2gen.codegen.consts import ConstPool
    from mnv2gen.codegen.generated.instances import InstanceSet
    from mnv2gen.codegen.generated.lower import lower_generated

    pool, instances = ConstPool(), InstanceSet()
    for up in plan.units:
        lower_generated(plan, up, pool, instances)
    kinds = Counter(i.kind for i in instances.instances())
    return Counter({"gen_pw": kinds["pw"], "gen_dw": kinds["dw"], "gen_conv": kinds["conv"],
                    "gen_other": kinds["add"] + kinds["requant_acc"]})


def code_features(plan: Plan) -> dict[str, int]:
    """Return what the generated code's size depends on: units and bands (call sites and
    tables in mnv2_model.c), which kernels get linked and, for the generated backend, its
    kernel instances per kind (CODE_FEATURES)."""
    counts = Counter({"base": 1})
    if plan.kernel_set == "generated":
        counts.update(_instance_counts(plan))
    for up in plan.units:
        if isinstance(up, SegmentPlan):  # a segment's tables: like one band per row step
            counts["fused_units"] += len(up.units)
            counts["bands"] += len(up.shape.schedule)
            counts["has_fused"] = 1
            counts["has_add"] |= any(st.add is not None for st in up.shape.stages)
            for st in up.shape.stages:
                flag = _KIND_FLAGS.get(st.unit.op.kind) if st.kind != "fused" and \
                    st.kind != "window" else None
                if flag:
                    counts[flag] = 1
        elif isinstance(up.unit, FusedUnit):
            counts["fused_units"] += 1
            counts["bands"] += len(up.choice.bands)
            counts["has_fused"] = 1
            counts["has_groups"] |= len(up.choice.groups) > 1
            counts["has_add"] |= up.unit.add is not None
        else:
            counts["layer_units"] += 1
            flag = _KIND_FLAGS.get(up.unit.op.kind)
            if flag:
                counts[flag] = 1
    return {name: int(counts.get(name, 0)) for name in CODE_FEATURES}
