"""The intermediate representation every pipeline stage reads and writes.

A `Graph` is a small immutable value: tensors by name, operators in execution
order, graph inputs and outputs. Activation tensors are NHWC. Front ends build
graphs, passes rewrite them (returning new graphs), and `Graph.verify()` checks
the invariants after every rewrite.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from mnv2gen.errors import IRError, quoted


class DType(enum.Enum):
    """Element types the IR can hold; `.np` is the matching NumPy dtype."""

    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"

    @property
    def np(self) -> np.dtype:
        """Return the NumPy dtype of this element type."""
        return np.dtype(self.value)

    @property
    def size_bytes(self) -> int:
        """Return the size of one element in bytes."""
        return self.np.itemsize


class OpKind(enum.Enum):
    """Operator kinds of the MobileNet family, named as in TFLite."""

    CONV_2D = "CONV_2D"
    DEPTHWISE_CONV_2D = "DEPTHWISE_CONV_2D"
    ADD = "ADD"
    AVERAGE_POOL_2D = "AVERAGE_POOL_2D"
    MEAN = "MEAN"
    FULLY_CONNECTED = "FULLY_CONNECTED"
    RESHAPE = "RESHAPE"
    SOFTMAX = "SOFTMAX"
    PAD = "PAD"
    TRANSPOSE = "TRANSPOSE"
    QUANTIZE = "QUANTIZE"
    DEQUANTIZE = "DEQUANTIZE"
    MUL = "MUL"
    SUB = "SUB"
    HARD_SWISH = "HARD_SWISH"
    LOGISTIC = "LOGISTIC"
    RESIZE_BILINEAR = "RESIZE_BILINEAR"
    RESIZE_NEAREST_NEIGHBOR = "RESIZE_NEAREST_NEIGHBOR"
    CONCATENATION = "CONCATENATION"
    MAX_POOL_2D = "MAX_POOL_2D"
    ARG_MAX = "ARG_MAX"
    # shape plumbing on int32/int64 data: constant-folded by passes.fold_constants
    SHAPE = "SHAPE"
    STRIDED_SLICE = "STRIDED_SLICE"
    PACK = "PACK"
    GATHER = "GATHER"
    TILE = "TILE"


class Activation(enum.Enum):
    """Fused activation functions (clamps in the int8 domain)."""

    NONE = "NONE"
    RELU = "RELU"
    RELU6 = "RELU6"
    RELU_N1_TO_1 = "RELU_N1_TO_1"


@dataclass(frozen=True)
class QuantParams:
    """Affine quantisation: real = scale * (q - zero_point).

    `scale` holds float32 values (as Python floats, exactly representable in
    float32); one entry for per-tensor, one per slice along `axis` otherwise.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        """Return True when there is more than one scale."""
        return len(self.scale) > 1


@dataclass(frozen=True, eq=False)
class Tensor:
    """A named tensor; `data` is set for constants (weights, biases, shapes)."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    quant: QuantParams | None = None
    data: np.ndarray | None = field(default=None, repr=False)

    @property
    def is_const(self) -> bool:
        """Return True for a constant tensor (one that carries data)."""
        return self.data is not None

    @property
    def num_elements(self) -> int:
        """Return the product of the shape."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def size_bytes(self) -> int:
        """Return the bytes one copy of this tensor occupies."""
        return self.num_elements * self.dtype.size_bytes

    @property
    def scale(self) -> float:
        """Return the per-tensor scale (raises IRError for unquantised tensors)."""
        if self.quant is None:
            raise IRError(f"tensor {quoted(self.name)} has no quantisation")
        return self.quant.scale[0]

    @property
    def zero_point(self) -> int:
        """Return the per-tensor zero point (raises IRError for unquantised tensors)."""
        if self.quant is None:
            raise IRError(f"tensor {quoted(self.name)} has no quantisation")
        return self.quant.zero_point[0]


@dataclass(frozen=True)
class Padding:
    """Explicit zero-point padding in rows/columns on each border."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class ConvAttrs:
    """Attributes of CONV_2D and DEPTHWISE_CONV_2D (filter size comes from the weights)."""

    stride_h: int
    stride_w: int
    padding: Padding
    activation: Activation = Activation.NONE
    dilation_h: int = 1
    dilation_w: int = 1
    depth_multiplier: int = 1


@dataclass(frozen=True)
class PoolAttrs:
    """Attributes of AVERAGE_POOL_2D and MAX_POOL_2D."""

    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    padding: Padding
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class AddAttrs:
    """Attributes of the elementwise ADD, SUB and MUL (inputs broadcast as in NumPy)."""

    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class ResizeAttrs:
    """Attributes of RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR: the output size."""

    height: int
    width: int
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class ConcatAttrs:
    """Attributes of CONCATENATION (non-negative axis)."""

    axis: int
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class AxisAttrs:
    """Attributes of ARG_MAX and PACK: one non-negative axis."""

    axis: int


@dataclass(frozen=True)
class GatherAttrs:
    """Attributes of GATHER: inputs (params, indices); output = take(params, indices, axis)."""

    axis: int
    batch_dims: int = 0


@dataclass(frozen=True)
class StridedSliceAttrs:
    """Attributes of STRIDED_SLICE (TFLite semantics; begin/end/strides were constants).

    Bit i of a mask refers to axis i. `offset`: end is relative to begin.
    """

    begin: tuple[int, ...]
    end: tuple[int, ...]
    strides: tuple[int, ...]
    begin_mask: int = 0
    end_mask: int = 0
    shrink_axis_mask: int = 0
    offset: bool = False


@dataclass(frozen=True)
class FullyConnectedAttrs:
    """Attributes of FULLY_CONNECTED: weights are (out_features, in_features)."""

    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class MeanAttrs:
    """Attributes of MEAN: the reduced axes (non-negative) and keep_dims."""

    axes: tuple[int, ...]
    keep_dims: bool


@dataclass(frozen=True)
class SoftmaxAttrs:
    """Attributes of SOFTMAX."""

    beta: float = 1.0


@dataclass(frozen=True)
class PadAttrs:
    """Attributes of PAD: (before, after) per dimension; pads with the zero point."""

    paddings: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class TransposeAttrs:
    """Attributes of TRANSPOSE: output dim i is input dim perm[i]."""

    perm: tuple[int, ...]


@dataclass(frozen=True)
class NoAttrs:
    """Operators without attributes (RESHAPE, QUANTIZE, DEQUANTIZE, HARD_SWISH, LOGISTIC,
    SHAPE, TILE)."""


Attrs = (
    ConvAttrs | PoolAttrs | AddAttrs | FullyConnectedAttrs | MeanAttrs | SoftmaxAttrs
    | PadAttrs | TransposeAttrs | ResizeAttrs | ConcatAttrs | AxisAttrs | GatherAttrs
    | StridedSliceAttrs | NoAttrs
)


@dataclass(frozen=True)
class Op:
    """One operator: inputs/outputs are tensor names.

    Input order follows TFLite: CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED take
    (input, weights, bias) and always have a bias; ADD, SUB, MUL and GATHER take two
    inputs, CONCATENATION and PACK one or more; TILE takes (input, multiples) and
    RESHAPE (input) or, while its shape is computed in the graph, (input, shape) until
    passes.fold_constants folds it; all other kinds take exactly one tensor input
    (constant shape/axis operands are folded into the attributes). `source_index` is the
    operator's index in the file it came from (-1 for operators created by a pass), used
    in error messages.
    """

    kind: OpKind
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Attrs = NoAttrs()
    source_index: int = -1

    def describe(self) -> str:
        """Return 'operator N (KIND)' for messages."""
        return f"operator {self.source_index} ({self.kind.value})"


@dataclass(frozen=True, eq=False)
class Graph:
    """A model: tensors by name, operators in execution order, graph I/O names.

    `notes` are the front end's statements about the conversion (what it changed and
    whether that is exact), generated text without model-derived strings.
    """

    name: str
    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source_sha256: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", MappingProxyType(dict(self.tensors)))

    def tensor(self, name: str) -> Tensor:
        """Return the tensor called `name` (raises IRError if absent)."""
        try:
            return self.tensors[name]
        except KeyError:
            raise IRError(f"no tensor named {quoted(name)}") from None

    def producer(self, name: str) -> Op | None:
        """Return the operator that writes tensor `name`, or None for inputs/constants."""
        for op in self.ops:
            if name in op.outputs:
                return op
        return None

    def consumers(self, name: str) -> tuple[Op, ...]:
        """Return the operators that read tensor `name`, in execution order."""
        return tuple(op for op in self.ops if name in op.inputs)

    def replace(self, **changes) -> Graph:
        """Return a copy of this graph with the given fields replaced."""
        fields = dict(name=self.name, tensors=self.tensors, ops=self.ops, inputs=self.inputs,
                      outputs=self.outputs, source_sha256=self.source_sha256, notes=self.notes)
        fields.update(changes)
        return Graph(**fields)

    def activation_tensors(self) -> tuple[Tensor, ...]:
        """Return the non-constant tensors (graph inputs and op outputs) in first-use order."""
        seen: dict[str, Tensor] = {n: self.tensor(n) for n in self.inputs}
        for op in self.ops:
            for n in op.outputs:
                seen.setdefault(n, self.tensor(n))
        return tuple(seen.values())

    def verify(self) -> None:
        """Check the graph invariants; raise IRError naming the first broken one."""
        from mnv2gen.shapes import check_op  # local: shapes imports ir

        defined = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_const}
        for name in self.inputs:
            if self.tensor(name).is_const:
                raise IRError(f"graph input {quoted(name)} is a constant")
        for op in self.ops:
            for name in op.inputs:
                if name not in defined:
                    raise IRError(f"{op.describe()} reads {quoted(name)} before it is written")
            for name in op.outputs:
                if name in defined:
                    raise IRError(f"{op.describe()} writes {quoted(name)}, which already has "
                                  "a value")
                if self.tensor(name).is_const:
                    raise IRError(f"{op.describe()} writes the constant {quoted(name)}")
                defined.add(name)
            check_op(self, op)
        for name in self.outputs:
            if name not in defined:
                raise IRError(f"graph output {quoted(name)} is never written")
