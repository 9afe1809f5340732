"""Veil's ONNX model files, rebuilt from Specs/export.md alone with the ONNX project's Python
package (its protobuf classes and writer, numpy for the roundings): an independent check of
Vectors/model/veil_onnx_export.json. Nothing here comes from Veil's code.

- export: §1's checkpoint rules, then §2's model, which must equal the vector's file byte for
  byte; onnx.checker must accept it.
- load: §2.5's reader, which must give the vector's model, precision, round and parameters, or
  refuse the file with the vector's reason (malformed: not a protobuf ModelProto with a graph;
  unsupported: anything §2.3 does not describe).
"""

from __future__ import annotations

import math
import re

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper

from veil_reference import Refused

PRODUCER_VERSION = "0.1.0"  # `veil --version`
FLOAT16_MAX = 65504.0


def widths(model: str, features: int, classes: int) -> list[int]:
    """§1: the layer widths s_0 … s_L of a checkpoint's model, or Refused(invalidCheckpoint)."""
    if features < 1 or classes < 2:
        raise Refused("invalidCheckpoint")
    if model == "softmax":
        return [features, classes]
    match = re.fullmatch(r"mlp:([0-9]+(?:,[0-9]+)*)", model)
    if not match or any(int(w) <= 0 for w in match.group(1).split(",")):
        raise Refused("invalidCheckpoint")
    return [features] + [int(w) for w in match.group(1).split(",")] + [classes]


def parameter_count(s: list[int]) -> int:
    return sum(s[l + 1] * (s[l] + 1) for l in range(len(s) - 1))


def build(model: str, s: list[int], round_: int, precision: str, parameters: list[float]) -> onnx.ModelProto:
    """§2.3 and §2.4: the ModelProto of a checkpoint."""
    half = precision == "float16"
    data_type = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    dtype = "<f2" if half else "<f4"
    p = np.asarray(parameters, dtype=np.float64)
    nodes, initializers = [], []

    def node(op: str, inputs: list[str], output: str, **attributes) -> None:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))

    def tensor(name: str, dims: list[int], values: np.ndarray) -> None:
        t = TensorProto()
        t.dims.extend(dims)
        t.data_type = data_type
        t.name = name
        t.raw_data = values.astype(dtype).tobytes()  # numpy rounds binary64 to nearest, ties to even
        initializers.append(t)

    current = "features"
    if half:
        node("Cast", ["features"], "features.half", to=TensorProto.FLOAT16)
        current = "features.half"
    layers = len(s) - 1
    offset = 0
    for l in range(layers):
        inputs, outputs = s[l], s[l + 1]
        tensor(f"layer{l}.weight", [outputs, inputs], p[offset:offset + outputs * inputs])
        offset += outputs * inputs
        tensor(f"layer{l}.bias", [outputs], p[offset:offset + outputs])
        offset += outputs
        last = l == layers - 1
        output = ("logits.half" if half else "logits") if last else f"layer{l}.output"
        node("Gemm", [current, f"layer{l}.weight", f"layer{l}.bias"], output, transB=1)
        current = output
        if not last:
            node("Relu", [output], f"layer{l}.activation")
            current = f"layer{l}.activation"
    node("Softmax", [current], "probabilities.half" if half else "probabilities", axis=1)
    if half:
        node("Cast", ["logits.half"], "logits", to=TensorProto.FLOAT)
        node("Cast", ["probabilities.half"], "probabilities", to=TensorProto.FLOAT)

    graph = onnx.GraphProto()
    graph.name = "veil_softmax" if layers == 1 else "veil_mlp"
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    graph.input.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", s[0]]))
    for name in ("logits", "probabilities"):
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", s[-1]]))

    file = onnx.ModelProto()
    file.ir_version = 7
    file.producer_name = "veil"
    file.producer_version = PRODUCER_VERSION
    file.model_version = round_
    file.doc_string = f"{model} classifier trained by a Veil federation; Specs/export.md"
    file.graph.CopyFrom(graph)
    opset = file.opset_import.add()
    opset.domain = ""
    opset.version = 13
    for key, value in (("veil.model", model), ("veil.precision", precision), ("veil.round", str(round_))):
        entry = file.metadata_props.add()
        entry.key, entry.value = key, value
    return file


def export(model: str, features: int, classes: int, round_: int, precision: str, parameters: list) -> bytes:
    s = widths(model, features, classes)
    if round_ < 0 or len(parameters) != parameter_count(s) or not all(math.isfinite(v) for v in parameters):
        raise Refused("invalidCheckpoint")
    if precision == "float16" and any(abs(v) > FLOAT16_MAX for v in parameters):
        raise Refused("unrepresentable")
    file = build(model, s, round_, precision, parameters)
    onnx.checker.check_model(file, full_check=True)
    return file.SerializeToString()


def load(data: bytes) -> tuple[str, str, int, list[float], int, int]:
    """§2.5: (model, precision, round, parameters, features, classes) of a file, or Refused."""
    file = onnx.ModelProto()
    try:
        file.ParseFromString(data)
    except DecodeError:
        raise Refused("malformed")
    if not file.HasField("graph"):
        raise Refused("malformed")
    graph = file.graph
    first = graph.node[0].op_type if graph.node else None
    precision = {"Cast": "float16", "Gemm": "float32"}.get(first)
    if precision is None:
        raise Refused("unsupported")
    if [(o.domain, o.version) for o in file.opset_import] not in ([("", 13)], [("ai.onnx", 13)]):
        raise Refused("unsupported")
    by_name = {t.name: t for t in graph.initializer}
    s: list[int] = []
    l = 0
    while f"layer{l}.weight" in by_name:
        dims = list(by_name[f"layer{l}.weight"].dims)
        if len(dims) != 2 or not all(1 <= d <= 1 << 24 for d in dims) or (s and s[-1] != dims[1]):
            raise Refused("unsupported")
        if not s:
            s.append(dims[1])
        s.append(dims[0])
        l += 1
    if len(s) < 2 or s[-1] < 2:
        raise Refused("unsupported")
    layers = len(s) - 1
    model = "softmax" if layers == 1 else "mlp:" + ",".join(str(w) for w in s[1:-1])
    reference = build(model, s, 0, precision, [0.0] * parameter_count(s)).graph
    if list(graph.node) != list(reference.node):
        raise Refused("unsupported")
    if list(graph.input) != list(reference.input) or list(graph.output) != list(reference.output):
        raise Refused("unsupported")
    if len(graph.initializer) != 2 * layers:
        raise Refused("unsupported")
    data_type = TensorProto.FLOAT16 if precision == "float16" else TensorProto.FLOAT
    width, dtype = (2, "<f2") if precision == "float16" else (4, "<f4")
    parameters: list[float] = []
    for l in range(layers):
        for name, dims in ((f"layer{l}.weight", [s[l + 1], s[l]]), (f"layer{l}.bias", [s[l + 1]])):
            t = by_name.get(name)
            if t is None or list(t.dims) != dims or t.data_type != data_type:
                raise Refused("unsupported")
            count = int(np.prod(dims))
            if precision == "float32" and len(t.float_data) and not t.HasField("raw_data"):
                if len(t.float_data) != count:
                    raise Refused("unsupported")
                values = np.asarray(t.float_data, dtype=np.float32)
            else:
                if len(t.raw_data) != count * width:
                    raise Refused("unsupported")
                values = np.frombuffer(t.raw_data, dtype=dtype)
            if not np.all(np.isfinite(values)):
                raise Refused("unsupported")
            parameters += [float(v) for v in values.astype(np.float64)]
    props = {p.key: p.value for p in file.metadata_props}
    round_ = int(props["veil.round"]) if props.get("veil.round", "").isdigit() else file.model_version
    return model, precision, round_, parameters, s[0], s[-1]


def check(group: dict, test: dict, expect) -> None:
    if test["operation"] == "export":
        file = export(test["model"], test["features"], test["classes"], test["round"], test["precision"],
                      test["parameters"])
        expect(file.hex(), test["file"], "file")
    elif test["operation"] == "load":
        model, precision, round_, parameters, features, classes = load(bytes.fromhex(test["file"]))
        expect(model, test["model"], "model")
        expect(precision, test["precision"], "precision")
        expect(round_, test["round"], "round")
        expect((features, classes), (test["features"], test["classes"]), "shape")
        expect(parameters, test["parameters"], "parameters")
    else:
        raise AssertionError(f"unknown operation {test['operation']}")
