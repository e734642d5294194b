"""`mnv2gen inspect`: what a model contains, as a JSON-ready dict and as text."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from mnv2gen.blocks import find_blocks
from mnv2gen.errors import shown
from mnv2gen.heads import find_heads, find_squeeze_excite
from mnv2gen.ir import ConvAttrs, Graph, Op, PoolAttrs, Tensor
from mnv2gen.stats import op_const_bytes, op_macs


def tensor_spec(t: Tensor) -> dict:
    """Return name, shape, dtype, bytes and (if quantised) scale/zero point of a tensor."""
    spec = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.value, "bytes": t.size_bytes}
    if t.quant is not None:
        spec["scale"] = t.quant.scale[0]
        spec["zero_point"] = t.quant.zero_point[0]
    return spec


def _op_entry(graph: Graph, position: int, op: Op) -> dict:
    out = graph.tensor(op.outputs[0])
    entry = {
        "index": position, "source_index": op.source_index, "kind": op.kind.value,
        "name": op.name,
        "input_shapes": [list(graph.tensor(n).shape) for n in op.inputs
                         if not graph.tensor(n).is_const],
        "output_shape": list(out.shape), "output_bytes": out.size_bytes,
        "param_bytes": op_const_bytes(graph, op), "macs": op_macs(graph, op),
    }
    a = op.attrs
    if isinstance(a, (ConvAttrs, PoolAttrs)):
        w = graph.tensor(op.inputs[1]).shape if isinstance(a, ConvAttrs) else None
        entry["kernel"] = [w[1], w[2]] if w else [a.filter_h, a.filter_w]
        entry["stride"] = [a.stride_h, a.stride_w]
        entry["padding"] = asdict(a.padding)
    if hasattr(a, "activation"):
        entry["activation"] = a.activation.value
    return entry


def summarize(graph: Graph) -> dict:
    """Return the inspect report of a graph (the JSON keys are documented in the README)."""
    ops = [_op_entry(graph, i, op) for i, op in enumerate(graph.ops)]
    activations = graph.activation_tensors()
    blocks = []
    for b in find_blocks(graph):
        entry = asdict(b)
        entry["input_shape"] = list(graph.tensor(b.input).shape)
        entry["output_shape"] = list(graph.tensor(b.output).shape)
        blocks.append(entry)
    return {
        "model": graph.name,
        "sha256": graph.source_sha256,
        "notes": list(graph.notes),
        "inputs": [tensor_spec(graph.tensor(n)) for n in graph.inputs],
        "outputs": [tensor_spec(graph.tensor(n)) for n in graph.outputs],
        "op_counts": dict(Counter(op.kind.value for op in graph.ops)),
        "ops": ops,
        "blocks": blocks,
        "squeeze_excite": [asdict(se) for se in find_squeeze_excite(graph)],
        "heads": [{**asdict(h), "shape": list(h.shape)} for h in find_heads(graph)],
        "tensors": [tensor_spec(t) for t in activations],
        "totals": {
            "ops": len(ops),
            "macs": sum(o["macs"] for o in ops),
            "param_bytes": sum(o["param_bytes"] for o in ops),
            "largest_tensor_bytes": max(t.size_bytes for t in activations),
            "activation_bytes": sum(t.size_bytes for t in activations),
        },
    }


def _io_line(spec: dict) -> str:
    q = f" scale={spec['scale']:.6g} zp={spec['zero_point']}" if "scale" in spec else ""
    return f"  {shown(spec['name'])}: {spec['dtype']}{spec['shape']}{q}"


def render_summary(s: dict) -> str:
    """Return the inspect report as a readable text table."""
    lines = [f"model   {shown(s['model'])}", f"sha256  {s['sha256']}"]
    lines += [f"note    {note}" for note in s.get("notes", ())] + ["inputs"]
    lines += [_io_line(t) for t in s["inputs"]] + ["outputs"] + [_io_line(t) for t in s["outputs"]]
    lines += ["", f"{'#':>3} {'src':>4} {'op':<18} {'output':<18} {'act':<6} {'MACs':>12} "
              f"{'params B':>9} {'out B':>9}"]
    for o in s["ops"]:
        lines.append(f"{o['index']:>3} {o['source_index']:>4} {o['kind']:<18} "
                     f"{'x'.join(map(str, o['output_shape'])):<18} {o.get('activation', ''):<6} "
                     f"{o['macs']:>12,} {o['param_bytes']:>9,} {o['output_bytes']:>9,}")
    t = s["totals"]
    lines += ["", f"ops {t['ops']}  MACs {t['macs']:,}  params {t['param_bytes']:,} B  "
              f"largest activation {t['largest_tensor_bytes']:,} B",
              f"blocks found: {len(s['blocks'])}"]
    for i, b in enumerate(s["blocks"]):
        shortcut = " +shortcut" if b["add"] else ""
        lines.append(f"  {i:>2} {b['kind']:<17} t={b['expansion']:.2f} k={b['kernel']} "
                     f"s={b['stride']} {'x'.join(map(str, b['input_shape']))} -> "
                     f"{'x'.join(map(str, b['output_shape']))}{shortcut}")
    if s["squeeze_excite"]:
        lines.append(f"squeeze-excite units: {len(s['squeeze_excite'])}")
        for se in s["squeeze_excite"]:
            lines.append(f"  {shown(se['mul'])}: scales {se['height']}x{se['width']}x"
                         f"{se['channels']} by a channel vector")
    lines.append(f"heads: {len(s['heads'])}")
    for i, h in enumerate(s["heads"]):
        ops = ", ".join(f"{k}x{v}" for k, v in sorted(h["op_counts"].items()))
        lines.append(f"  {i:>2} {h['kind']:<18} -> {'x'.join(map(str, h['shape']))}"
                     f"{'  (' + ops + ')' if ops else ''}")
    return "\n".join(lines)
