"""Seeded mutations of model files: what an attacker or a careless user feeds mnv2gen.

TFLite: byte flips, truncations and splices anywhere; flips inside the weight buffers
(a valid model with other weights, which must still build bit-exact); structural edits
of scalar fields and vector elements located through the flatbuffer tables (opcode and
tensor indices, tensor types, shapes, scales, zero points, strides, paddings, filter
sizes, activations, option types, buffer indices and vector lengths). ONNX: the same
byte-level edits, and edits through the protobuf API (op types, attributes, input
dimensions, initializer values and types, scales and zero points, node order, names).
Same seed, same mutants.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import tflite

_INTS = (0, -1, 1, 2, 3, 7, 127, 128, 255, 256, -128, -129, 32767, 32768, 65535, 65536,
         1 << 24, (1 << 31) - 1, -(1 << 31), 1 << 30, 1000003)
_FLOATS = (0.0, -0.0, float("nan"), float("inf"), float("-inf"), -1.0, 1e38, 3.4e38, 1e-45,
           1e-38, 1e-30, 1e30, 1e-9, 2.0 ** 31, 0.5, 1e9)
# option table name -> {vtable offset: struct format} (the TFLite schema's field order)
_OPTION_FIELDS = {
    "Conv2DOptions": {4: "b", 6: "i", 8: "i", 10: "b", 12: "i", 14: "i"},
    "DepthwiseConv2DOptions": {4: "b", 6: "i", 8: "i", 10: "i", 12: "b", 14: "i", 16: "i"},
    "Pool2DOptions": {4: "b", 6: "i", 8: "i", 10: "i", 12: "i", 14: "b"},
    "SoftmaxOptions": {4: "f"},
    "FullyConnectedOptions": {4: "b", 6: "b", 8: "B"},
    "AddOptions": {4: "b"},
    "ReducerOptions": {4: "B"},
}
_OPTION_NAMES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
HOSTILE_NAMES = (
    "x */ int mnv2_injected(void){return system(\"touch INJECTED\");} /* y",
    "a\n#include </etc/passwd>\nb", 'quote " and \\ backslash', "trigraph ??/\nnext",
    "nul\x00byte", "\x1b[31mred\x1b[0m\nerror: forged", "caf\u00e9 \u2603 \u202eevil",
    "m\nall:;@touch INJECTED\n#", "x\" )\nexecute_process(COMMAND touch INJECTED)\n#(",
    "$(shell touch INJECTED)", "${CMAKE_COMMAND}", "A" * 100_000, b"bad\xff\xfeutf8\xc3",
)


@dataclass(frozen=True)
class Mutant:
    """One mutated file: a name saying what was done, its bytes and its file suffix."""

    name: str
    data: bytes
    suffix: str


def _value(fmt: str, rng: np.random.Generator):
    if fmt == "f":
        if rng.random() < 0.7:
            return float(rng.choice(_FLOATS))
        return float(np.float32(rng.normal() * 10.0 ** rng.integers(-12, 12)))
    info = {"b": (-128, 127), "B": (0, 255), "h": (-(1 << 15), (1 << 15) - 1),
            "i": (-(1 << 31), (1 << 31) - 1), "I": (0, (1 << 32) - 1),
            "q": (-(1 << 63), (1 << 63) - 1), "Q": (0, (1 << 63) - 1)}[fmt]
    value = int(rng.choice(_INTS)) if rng.random() < 0.8 else int(rng.integers(-300, 300))
    return min(max(value, info[0]), info[1])


class TfliteSites:
    """Byte positions of the scalar fields and vector elements of a TFLite buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sites: list[tuple[str, int, str]] = []  # (label, position, struct format)
        self.buffers: list[tuple[int, int]] = []     # (start, length) of constant data
        model = tflite.Model.GetRootAsModel(data, 0)
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            self._field(f"opcode{i}.deprecated_code", code, 4, "b")
            self._field(f"opcode{i}.builtin_code", code, 10, "i")
        sg = model.Subgraphs(0)
        self._vector(sg, 6, "i", "subgraph.inputs")
        self._vector(sg, 8, "i", "subgraph.outputs")
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            self._vector(t, 4, "i", f"tensor{i}.shape")
            self._field(f"tensor{i}.type", t, 6, "b")
            self._field(f"tensor{i}.buffer", t, 8, "I")
            q = t.Quantization()
            if q is not None:
                self._vector(q, 8, "f", f"tensor{i}.scale")
                self._vector(q, 10, "q", f"tensor{i}.zero_point")
                self._field(f"tensor{i}.quantized_dimension", q, 16, "i")
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            self._field(f"op{i}.opcode_index", op, 4, "I")
            self._vector(op, 6, "i", f"op{i}.inputs")
            self._vector(op, 8, "i", f"op{i}.outputs")
            self._field(f"op{i}.options_type", op, 10, "B")
            table = op.BuiltinOptions()
            fields = _OPTION_FIELDS.get(_OPTION_NAMES.get(op.BuiltinOptionsType(), ""), {})
            if table is not None:
                for offset, fmt in fields.items():
                    o = table.Offset(offset)
                    if o:
                        self.sites.append((f"op{i}.option@{offset}", table.Pos + o, fmt))
        for i in range(model.BuffersLength()):
            buf = model.Buffers(i)
            o = buf._tab.Offset(4)
            if o:
                start = buf._tab.Vector(o)
                self.buffers.append((start, buf._tab.VectorLen(o)))
                self.sites.append((f"buffer{i}.length", start - 4, "I"))

    def _field(self, label: str, obj, offset: int, fmt: str) -> None:
        o = obj._tab.Offset(offset)
        if o:
            self.sites.append((label, obj._tab.Pos + o, fmt))

    def _vector(self, obj, offset: int, fmt: str, label: str) -> None:
        o = obj._tab.Offset(offset)
        if not o:
            return
        start, length = obj._tab.Vector(o), obj._tab.VectorLen(o)
        self.sites.append((f"{label}.length", start - 4, "I"))
        size = struct.calcsize(fmt)
        for k in range(min(length, 8)):
            self.sites.append((f"{label}[{k}]", start + k * size, fmt))


def _byte_mutation(data: bytes, rng: np.random.Generator, buffers) -> tuple[str, bytes]:
    buf = bytearray(data)
    choice = rng.integers(5)
    if choice == 0:  # truncate
        cut = int(rng.integers(0, len(buf)))
        return f"truncate@{cut}", bytes(buf[:cut])
    if choice == 1 and buffers:  # a valid model with other weights
        start, length = buffers[int(rng.integers(len(buffers)))]
        if length:
            for _ in range(int(rng.integers(1, 9))):
                buf[start + int(rng.integers(length))] ^= 1 << int(rng.integers(8))
            return f"weights@{start}", bytes(buf)
    if choice == 2:  # splice random or 0xFF bytes
        at = int(rng.integers(0, len(buf)))
        n = int(rng.integers(1, 17))
        fill = rng.integers(0, 256, n).astype(np.uint8).tobytes() if rng.random() < 0.5 \
            else b"\xff" * n
        buf[at:at + n] = fill[:len(buf) - at]
        return f"splice@{at}", bytes(buf)
    if choice == 3:  # insert or delete a chunk
        at = int(rng.integers(0, len(buf)))
        n = int(rng.integers(1, 64))
        if rng.random() < 0.5:
            return f"delete@{at}", bytes(buf[:at] + buf[at + n:])
        return f"insert@{at}", bytes(buf[:at] + rng.bytes(n) + buf[at:])
    for _ in range(int(rng.integers(1, 5))):  # flip bits
        buf[int(rng.integers(len(buf)))] ^= 1 << int(rng.integers(8))
    return "flip", bytes(buf)


def tflite_mutants(base: str, data: bytes, seed: int, count: int,
                   structural: float = 0.6) -> Iterator[Mutant]:
    """Yield `count` mutants of a TFLite model: a `structural` share of field edits, the
    rest byte-level edits (a fifth of those inside weight buffers)."""
    rng = np.random.default_rng([seed, 0xF022])
    sites = TfliteSites(data)
    for n in range(count):
        if rng.random() < structural and sites.sites:
            buf = bytearray(data)
            labels = []
            for _ in range(1 if rng.random() < 0.8 else 2):
                label, pos, fmt = sites.sites[int(rng.integers(len(sites.sites)))]
                value = _value(fmt, rng)
                struct.pack_into("<" + fmt, buf, pos, value)
                labels.append(f"{label}={value}")
            yield Mutant(f"{base}/{n}:" + ",".join(labels), bytes(buf), ".tflite")
        else:
            what, mutated = _byte_mutation(data, rng, sites.buffers)
            yield Mutant(f"{base}/{n}:{what}", mutated, ".tflite")


def _onnx_structural(model, rng: np.random.Generator) -> str:
    """Edit one thing of an onnx ModelProto in place; return what was done."""
    from onnx import TensorProto, numpy_helper

    g = model.graph
    choice = int(rng.integers(13))
    if choice == 0 and g.node:
        node = g.node[int(rng.integers(len(g.node)))]
        node.op_type = str(rng.choice(["Foo", "QLinearConv", "Conv", "Add", "Relu",
                                       *HOSTILE_NAMES[:8]]))
        return f"op_type[{node.name or '?'}]"
    if choice == 1:
        nodes = [n for n in g.node if n.attribute]
        if nodes:
            attr = rng.choice(nodes).attribute
            a = attr[int(rng.integers(len(attr)))]
            if a.ints:
                a.ints[int(rng.integers(len(a.ints)))] = int(rng.choice(_INTS))
            elif a.type == a.INT:
                a.i = int(rng.choice(_INTS))
            elif a.type == a.FLOAT:
                a.f = float(rng.choice(_FLOATS))
            return f"attribute {a.name}"
    if choice == 2 and g.input:
        dims = g.input[0].type.tensor_type.shape.dim
        if dims:
            d = dims[int(rng.integers(len(dims)))]
            d.dim_value = int(rng.choice([0, 1, 2, 3, 1 << 31, 1 << 40, 100000, 32768]))
            return "input dim"
    if choice in (3, 4) and g.initializer:
        init = g.initializer[int(rng.integers(len(g.initializer)))]
        array = numpy_helper.to_array(init).copy()
        if array.size and array.dtype.kind == "f":
            array.reshape(-1)[int(rng.integers(array.size))] = rng.choice(_FLOATS)
        elif array.size:
            info = np.iinfo(array.dtype)
            array.reshape(-1)[int(rng.integers(array.size))] = rng.choice(
                [info.min, info.max, 0, -1 if info.min < 0 else 1])
        init.CopyFrom(numpy_helper.from_array(array, init.name))
        if choice == 4:
            init.data_type = int(rng.choice([TensorProto.UINT8, TensorProto.INT16,
                                             TensorProto.INT32, TensorProto.FLOAT16]))
        return f"initializer {init.name}"
    if choice == 5 and len(g.node) > 1:
        i, j = (int(v) for v in rng.choice(len(g.node), 2, replace=False))
        a, b = type(g.node[i])(), type(g.node[j])()
        a.CopyFrom(g.node[i])
        b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
        return "swap nodes"
    if choice == 6 and g.node:
        del g.node[int(rng.integers(len(g.node)))]
        return "delete node"
    if choice == 7 and g.node:
        node = g.node[int(rng.integers(len(g.node)))]
        if node.input:
            node.input[int(rng.integers(len(node.input)))] = str(rng.choice(
                ["missing", "", g.input[0].name if g.input else "x"]))
        return "rewire input"
    if choice == 9 and g.node:  # fewer inputs than the operator needs (QLinear*: 8 or 9)
        node = g.node[int(rng.integers(len(g.node)))]
        if node.input:
            del node.input[int(rng.integers(len(node.input))):]
            return "drop inputs"
    if choice == 10 and g.node:
        node = g.node[int(rng.integers(len(g.node)))]
        del node.output[:]
        return "drop outputs"
    if choice == 11 and g.initializer:  # an empty or longer scale/zero point/weight
        init = g.initializer[int(rng.integers(len(g.initializer)))]
        array = numpy_helper.to_array(init)
        size = int(rng.choice([0, 2, 3]))
        init.CopyFrom(numpy_helper.from_array(np.resize(array.reshape(-1), size), init.name))
        return f"resize initializer {init.name}"
    if choice == 12 and g.node:  # an attribute of an unexpected type
        node = g.node[int(rng.integers(len(g.node)))]
        from onnx import helper

        name = str(rng.choice(["alpha", "channels_last", "axis", "transB", "pads", "group"]))
        value = ("x\n*/", 1e30, [1, 2, 3], -5)[int(rng.integers(4))]
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, value)])
        return f"attribute {name} type"
    if model.opset_import:
        model.opset_import[0].version = int(rng.choice([1, 9, 10, 11, 99, 1 << 30]))
    return "opset"


def onnx_mutants(base: str, data: bytes, seed: int, count: int,
                 structural: float = 0.7) -> Iterator[Mutant]:
    """Yield `count` mutants of an ONNX model (protobuf edits and byte-level edits)."""
    import onnx

    rng = np.random.default_rng([seed, 0x0AA])
    for n in range(count):
        if rng.random() < structural:
            model = onnx.load_model_from_string(data)
            what = _onnx_structural(model, rng)
            yield Mutant(f"{base}/{n}:{what}", model.SerializeToString(), ".onnx")
        else:
            what, mutated = _byte_mutation(data, rng, [])
            yield Mutant(f"{base}/{n}:{what}", mutated, ".onnx")


def rename_onnx(data: bytes, names) -> bytes:
    """Return the ONNX model with its node, node output, initializer and graph names made
    from `names` (a string or a sequence, used in turn), consistently so the model stays
    valid. Bytes in `names` (e.g. invalid UTF-8) are patched into the serialised file."""
    import onnx

    names = [names] if isinstance(names, (str, bytes)) else list(names)
    markers = {}

    def text(i: int) -> str:
        name = names[i % len(names)]
        if isinstance(name, bytes):
            marker = f"@@MARKER{len(markers):04d}@@"
            markers[marker.encode()] = name
            return marker
        return name

    model = onnx.load_model_from_string(data)
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    mapping = {}
    for i, node in enumerate(g.node):
        node.name = f"{text(i)}{i}"
        for k, out in enumerate(node.output):
            if out and out not in keep:
                mapping[out] = f"{text(i + k)}_{i}_{k}"
    for j, init in enumerate(g.initializer):
        if init.name not in keep:
            mapping[init.name] = f"{text(j)}@{j}"
    for init in g.initializer:
        init.name = mapping.get(init.name, init.name)
    for node in g.node:
        node.input[:] = [mapping.get(x, x) for x in node.input]
        node.output[:] = [mapping.get(x, x) for x in node.output]
    for vi in g.value_info:
        vi.name = mapping.get(vi.name, vi.name)
    g.name = text(0)
    model.producer_name = text(1)
    out = model.SerializeToString()
    for marker, raw in markers.items():  # same length keeps the protobuf valid
        out = out.replace(marker, raw[:len(marker)].ljust(len(marker), b"\xff"))
    return out


def custom_op_tflite(code: bytes) -> bytes:
    """Return a one-operator TFLite model whose operator is CUSTOM with `code` as its
    custom code (any bytes: newlines, ANSI escapes, invalid UTF-8, 10 KB)."""
    import flatbuffers

    b = flatbuffers.Builder(1024 + len(code))
    custom = b.CreateByteVector(code)
    tensors = []
    for name in (b"in", b"out"):
        s = b.CreateByteVector(name)
        tflite.TensorStartShapeVector(b, 2)
        for d in (4, 1):
            b.PrependInt32(d)
        shape = b.EndVector()
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, tflite.TensorType.INT8)
        tflite.TensorAddName(b, s)
        tensors.append(tflite.TensorEnd(b))

    def ivec(values):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependInt32(v)
        return b.EndVector()

    def ovec(offsets):
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    op_in, op_out = ivec([0]), ivec([1])
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, op_in)
    tflite.OperatorAddOutputs(b, op_out)
    op = tflite.OperatorEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, 32)
    tflite.OperatorCodeAddBuiltinCode(b, 32)
    tflite.OperatorCodeAddCustomCode(b, custom)
    opcode = tflite.OperatorCodeEnd(b)
    t_vec, sg_in, sg_out, op_vec = ovec(tensors), ivec([0]), ivec([1]), ovec([op])
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, t_vec)
    tflite.SubGraphAddInputs(b, sg_in)
    tflite.SubGraphAddOutputs(b, sg_out)
    tflite.SubGraphAddOperators(b, op_vec)
    sg = tflite.SubGraphEnd(b)
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    codes, sgs, bufs = ovec([opcode]), ovec([sg]), ovec([empty])
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, sgs)
    tflite.ModelAddBuffers(b, bufs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
