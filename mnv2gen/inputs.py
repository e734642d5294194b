"""Model inputs: seeded random tensors and .npy files checked against the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnv2gen.errors import MnvError, file_label, quoted
from mnv2gen.ir import DType, Graph, Tensor


def _float_range(graph: Graph, tensor: Tensor) -> tuple[float, float]:
    """Return the real range the QUANTIZE after a float input can represent."""
    for op in graph.consumers(tensor.name):
        q = graph.tensor(op.outputs[0])
        if q.quant is not None:
            return q.scale * (-128 - q.zero_point), q.scale * (127 - q.zero_point)
    return -1.0, 1.0


def random_input(graph: Graph, tensor: Tensor, rng: np.random.Generator) -> np.ndarray:
    """Return a random array for graph input `tensor`: full integer range, or for a
    float input the range its quantiser represents."""
    if tensor.dtype is DType.FLOAT32:
        lo, hi = _float_range(graph, tensor)
        return rng.uniform(lo, hi, tensor.shape).astype(np.float32)
    info = np.iinfo(tensor.dtype.np)
    return rng.integers(info.min, info.max, tensor.shape, endpoint=True).astype(tensor.dtype.np)


def random_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    """Return one seeded random array per graph input, in graph order."""
    rng = np.random.default_rng(seed)
    return [random_input(graph, graph.tensor(n), rng) for n in graph.inputs]


NPY_LIMIT_BYTES = 1 << 31


def load_npy(path: str | Path) -> np.ndarray:
    """Return the array of a .npy file (a regular file of at most 2 GiB, no pickles)."""
    import io

    from mnv2gen.frontend.tflite import read_model_bytes

    data = read_model_bytes(path, NPY_LIMIT_BYTES, ".npy file")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise MnvError(f"{file_label(path)}: cannot read as .npy ({quoted(exc, 120)})",
                       "save the array with numpy.save") from None


def load_input(graph: Graph, path: str | Path) -> list[np.ndarray]:
    """Return the single graph input read from a .npy file, checked for shape and dtype.

    A batch-less array (e.g. HxWxC for a 1xHxWxC input) is accepted.
    """
    if len(graph.inputs) != 1:
        raise MnvError(f"{path}: the model has {len(graph.inputs)} inputs; --input takes one")
    array = load_npy(path)
    spec = graph.tensor(graph.inputs[0])
    if array.size == spec.num_elements and array.shape != spec.shape:
        array = array.reshape(spec.shape)
    if array.shape != spec.shape or array.dtype != spec.dtype.np:
        raise MnvError(
            f"{path}: array is {array.dtype}{list(array.shape)}, the model input "
            f"{quoted(spec.name)} is {spec.dtype.value}{list(spec.shape)}",
            "save the input with the model's shape and dtype (see `mnv2gen inspect`)")
    return [array]
