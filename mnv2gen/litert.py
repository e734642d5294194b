"""Optional oracle for operators TFLite Micro lacks: the full TFLite interpreter (LiteRT).

The `ai-edge-litert` package is imported lazily (a test extra, like tflite-micro). It is
always run with OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES and one thread, so no
XNNPACK delegate rewrites the graph; its builtin kernels are TFLite's *optimised* ones,
which can differ from the reference kernels by one LSB on some operators (see
tests/test_reference_litert.py for where and why).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mnv2gen.errors import MnvError


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError as exc:
        raise MnvError("the ai-edge-litert package is not installed",
                       "pip install ai-edge-litert (the full TFLite interpreter)") from exc
    return interpreter


def litert_available() -> bool:
    """Return True when the LiteRT interpreter can be imported."""
    try:
        _interpreter_module()
    except MnvError:
        return False
    return True


def run_litert_op_outputs(model_bytes: bytes,
                          inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run one inference in LiteRT; return the first output of every operator, in model
    order (entry i belongs to operator i of the file, an IR op's `source_index`)."""
    lrt = _interpreter_module()
    try:
        interpreter = lrt.Interpreter(
            model_content=bytes(model_bytes), num_threads=1,
            experimental_op_resolver_type=lrt.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        for detail, array in zip(interpreter.get_input_details(), inputs, strict=True):
            interpreter.set_tensor(detail["index"], np.ascontiguousarray(array))
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        raise MnvError(f"LiteRT failed to run the model: {exc}") from None
    by_index = {d["index"]: d for d in interpreter._get_ops_details()}
    return [np.array(interpreter.get_tensor(int(by_index[i]["outputs"][0])))
            for i in range(len(by_index))]
