"""Assemble the int8 IR Graph of a FloatModel from activation quantisation and weights.

Shared by post-training quantisation (`ptq`) and the QDQ reader (`onnx_qdq`). The graph
has TFLite's float edges: a float32 NHWC input, QUANTIZE to int8, the int8 body, and
DEQUANTIZE to a float32 output; `passes.integer_core` cuts them for the C code. Where
TFLite fixes an output's quantisation (SOFTMAX: 1/256, zero point -128; RESHAPE: its
input's) and the caller asks for another, an int8 -> int8 QUANTIZE is appended; an
AVERAGE_POOL_2D asked to rescale (TFLite's keeps its input's scale) becomes a depthwise
convolution computing the same mean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from mnv2gen.errors import ModelError, quoted
from mnv2gen.frontend.float_model import FloatModel
from mnv2gen.frontend.validate import validate_graph
from mnv2gen.ir import ConvAttrs, DType, Graph, NoAttrs, Op, OpKind, QuantParams, Tensor
from mnv2gen.zoo_float import INPUT, FloatLayer
from mnv2gen.zoo_quant import SOFTMAX_QUANT

WeightFn = Callable[[FloatLayer, Tensor], tuple[Tensor, Tensor]]
QUANTIZED_INPUT = f"{INPUT}/int8"


def same_quant(a: QuantParams, b: QuantParams) -> bool:
    """Return True when two per-tensor quantisations are equal in float32."""
    return (np.float32(a.scale[0]) == np.float32(b.scale[0])
            and a.zero_point[0] == b.zero_point[0])


def _fixed_quant(layer: FloatLayer, tensors: Mapping[str, Tensor]) -> QuantParams | None:
    """Return the output quantisation TFLite imposes on `layer`, if any."""
    if layer.kind is OpKind.SOFTMAX:
        return SOFTMAX_QUANT
    if layer.kind is OpKind.RESHAPE:
        return tensors[layer.inputs[0]].quant
    return None


def _pool_as_depthwise(layer: FloatLayer, x: Tensor) -> tuple[FloatLayer, tuple[Tensor, ...]]:
    """Return an unpadded AVERAGE_POOL_2D as the DEPTHWISE_CONV_2D computing the same mean
    (weights 1 at scale 1 / window size, bias 0) and its constant tensors. TFLite's pool
    keeps its input's quantisation, so another output scale would need a second rounding;
    the convolution requantises once, as the file's own pool (onnxruntime's) does."""
    a = layer.attrs
    channels = layer.shape[-1]
    w_scale = np.float32(1.0 / (a.filter_h * a.filter_w))
    w_quant = QuantParams((float(w_scale),) * channels, (0,) * channels, 3)
    b_scale = float(np.float32(x.scale) * w_scale)
    weights = Tensor(f"{layer.name}/weights", (1, a.filter_h, a.filter_w, channels), DType.INT8,
                     w_quant, np.ones((1, a.filter_h, a.filter_w, channels), np.int8))
    bias = Tensor(f"{layer.name}/bias", (channels,), DType.INT32,
                  QuantParams((b_scale,) * channels, (0,) * channels), np.zeros(channels, np.int32))
    conv = ConvAttrs(a.stride_h, a.stride_w, a.padding, a.activation)
    return replace(layer, kind=OpKind.DEPTHWISE_CONV_2D, attrs=conv), (weights, bias)


def assemble(model: FloatModel, quant: Mapping[str, QuantParams], weights: WeightFn,
             label: str | None = None) -> Graph:
    """Return the int8 Graph of `model`, checked by the front door (`validate_graph`, whose
    messages start with `label`, default the model's name).

    `quant` maps INPUT and every layer name to its int8 output quantisation; `weights`
    returns the (int8 weights, int32 bias) tensors of a weighted layer given its int8
    input tensor.
    """
    x = model.input_shape
    tensors = {INPUT: Tensor(INPUT, x, DType.FLOAT32),
               QUANTIZED_INPUT: Tensor(QUANTIZED_INPUT, x, DType.INT8, quant[INPUT])}
    ops = [Op(OpKind.QUANTIZE, "quantize_input", (INPUT,), (QUANTIZED_INPUT,), NoAttrs(), -1)]
    names = {INPUT: QUANTIZED_INPUT}

    def add(t: Tensor) -> None:
        if t.name in tensors:  # a file's names can collide with the ones made here
            raise ModelError(f"{label or model.name}: two tensors are called {quoted(t.name)}",
                             "rename the tensors of the model so each name is unique")
        tensors[t.name] = t

    for layer in model.layers:
        source = model.source_nodes.get(layer.name, -1)
        inputs = tuple(names[n] for n in layer.inputs)
        wanted = quant[layer.name]
        if (layer.kind is OpKind.AVERAGE_POOL_2D
                and not same_quant(tensors[inputs[0]].quant, wanted)):
            layer, consts = _pool_as_depthwise(layer, tensors[inputs[0]])
            for t in consts:
                add(t)
            inputs = (*inputs, *(t.name for t in consts))
        elif layer.weights is not None:
            w, b = weights(layer, tensors[inputs[0]])
            add(w)
            add(b)
            inputs = (*inputs, w.name, b.name)
        fixed = _fixed_quant(layer, tensors)
        out = layer.name
        if fixed is not None and not same_quant(fixed, wanted):
            out = f"{layer.name}/{layer.kind.value.lower()}"
        add(Tensor(out, layer.shape, DType.INT8, fixed or wanted))
        ops.append(Op(layer.kind, layer.name, inputs, (out,), layer.attrs, source))
        if out != layer.name:  # requantise to the quantisation the model asks for
            add(Tensor(layer.name, layer.shape, DType.INT8, wanted))
            ops.append(Op(OpKind.QUANTIZE, f"{layer.name}/requantize", (out,), (layer.name,),
                          NoAttrs(), source))
        names[layer.name] = layer.name
    last = model.output
    result = f"{last}/dequantized"
    add(Tensor(result, tensors[last].shape, DType.FLOAT32))
    ops.append(Op(OpKind.DEQUANTIZE, "dequantize_output", (last,), (result,), NoAttrs(), -1))
    graph = Graph(model.name, tensors, tuple(ops), (INPUT,), (result,), model.source_sha256)
    return validate_graph(graph, label or model.name)
