"""The steps of a plan: one unit on whole tensors, or a depth-first segment of units."""

from __future__ import annotations

from dataclasses import dataclass, field

from mnv2gen.planner.candidates import Candidate
from mnv2gen.planner.schedule import Unit
from mnv2gen.planner.segment_shape import SegmentShape

INPUT_MODES = ("resident", "streamed")


@dataclass(frozen=True)
class UnitPlan:
    """One unit at one step, with its chosen chunking (fused units) and scratch."""

    step: int
    unit: Unit
    choice: Candidate | None
    scratch: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Return the unit's name."""
        return self.unit.name


@dataclass(frozen=True)
class SegmentPlan:
    """A chain of units run depth-first as one step (see mnv2gen.planner.segment).

    scratch: buffer suffix -> bytes: "ring{i}" the input ring of stage i (i = 0 only
    for a streamed input), "e{i}" the E ring of stage i, "pool" the transient pool,
    "acc" the int32 sums of a final pool stage.
    """

    step: int
    name: str
    units: tuple[Unit, ...]
    shape: SegmentShape
    scratch: dict[str, int] = field(default_factory=dict)

    @property
    def input(self) -> str:
        """Return the tensor the first stage reads."""
        return self.shape.stages[0].input

    @property
    def output(self) -> str:
        """Return the tensor the last stage writes."""
        return self.shape.stages[-1].output

    @property
    def streamed(self) -> bool:
        """Return True when the segment reads the graph input from a streamed ring."""
        return self.shape.streamed

    @property
    def choice(self) -> None:
        """Return None: segments have no band chunking (kept for uniform access)."""
        return None


Step = UnitPlan | SegmentPlan


def segment_scratch(shape: SegmentShape) -> dict[str, int]:
    """Return the scratch buffers (suffix -> bytes) of a segment shape."""
    result: dict[str, int] = {}
    for i in range(len(shape.stages)):
        if shape.ring_pixels[i]:
            result[f"ring{i}"] = shape.ring_bytes(i)
        if shape.e_ring_pixels[i]:
            result[f"e{i}"] = shape.e_ring_bytes(i)
    result["pool"] = shape.pool_bytes
    if shape.acc_bytes:
        result["acc"] = shape.acc_bytes
    return {k: v for k, v in result.items() if v}
