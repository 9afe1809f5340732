"""Veil's model files, rebuilt from Specs/export.md alone: an independent check of
Vectors/model/veil_onnx_export.json and veil_tflite_export.json. Nothing here comes from Veil's
code.

ONNX (§2), with the ONNX project's Python package (its protobuf classes and writer; numpy for
the roundings):
- export: §1's checkpoint rules, then §2's model, which must equal the vector's file byte for
  byte; onnx.checker must accept it.
- load: §2.5's reader, which must give the vector's model, precision, round and parameters, or
  refuse the file with the vector's reason (malformed: not a protobuf ModelProto with a graph;
  unsupported: anything §2.3 does not describe).

TensorFlow Lite (§3), with a FlatBuffers writer of this file's own that follows §3.1's layout
and §3.3's int8 quantisation, and LiteRT's generated schema reader (`ai_edge_litert`) to read:
- export: the vector's file byte for byte;
- load: §3.4 — the constants read with LiteRT's reader, the file rewritten here from them and
  compared, int8 dequantised.
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
    if precision not in ("float32", "float16"):  # §2.2: the ONNX file's precisions
        raise Refused("unrepresentable")
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
            if len(t.raw_data) != count * width:
                raise Refused("unsupported")
            values = np.frombuffer(t.raw_data, dtype=dtype)
            if not np.all(np.isfinite(values)):
                raise Refused("unsupported")
            parameters += [float(v) for v in values.astype(np.float64)]
    props = {p.key: p.value for p in file.metadata_props}
    text = props.get("veil.round", "")
    if not (text.isascii() and text.isdigit() and str(int(text)) == text):
        raise Refused("unsupported")
    # §2.5: exactly what §2.4 writes for these parameters, byte for byte.
    if build(model, s, int(text), precision, parameters).SerializeToString() != data:
        raise Refused("unsupported")
    return model, precision, int(text), parameters, s[0], s[-1]


def _check(test: dict, expect, export_file, load_file) -> None:
    """One vector case of either format: an export must give `file`; a load its fields."""
    if test["operation"] == "export":
        expect(export_file().hex(), test["file"], "file")
    elif test["operation"] == "load":
        model, precision, round_, parameters, features, classes = load_file(bytes.fromhex(test["file"]))
        expect(model, test["model"], "model")
        expect(precision, test["precision"], "precision")
        expect(round_, test["round"], "round")
        expect((features, classes), (test["features"], test["classes"]), "shape")
        expect(parameters, test["parameters"], "parameters")
    else:
        raise AssertionError(f"unknown operation {test['operation']}")


def check(group: dict, test: dict, expect) -> None:
    _check(test, expect, lambda: export(test["model"], test["features"], test["classes"], test["round"],
                                        test["precision"], test["parameters"]), load)


# --- §3 TensorFlow Lite ------------------------------------------------------------------------
# A FlatBuffers writer of its own, following §3.1's layout, and §3.2–§3.3's model. Values are
# Python objects: ("table", {index: field}), ("string", text), ("scalars", bytes, alignment, count),
# ("tables", [table…]); a field is ("scalar", bytes) or ("ref", object).

import struct


def _u8(v): return ("scalar", struct.pack("<B", v))
def _i8(v): return ("scalar", struct.pack("<b", v))
def _u32(v): return ("scalar", struct.pack("<I", v))
def _i32(v): return ("scalar", struct.pack("<i", v))
def _f32(v): return ("scalar", struct.pack("<f", v))
def _ref(obj): return ("ref", obj)
def _string(text): return ("string", text)
def _tables(tables): return ("tables", tables)
def _table(fields): return ("table", fields)


def _vector(fmt: str, values, alignment: int | None = None):
    size = struct.calcsize("<" + fmt)
    return ("scalars", struct.pack("<" + fmt * len(values), *values), alignment or size, len(values))


class _Writer:
    def __init__(self):
        self.out = bytearray()

    def pad(self, alignment: int, extra: int = 0):
        while (len(self.out) + extra) % alignment:
            self.out.append(0)

    def patch(self, slot: int, target: int):
        assert target > slot
        struct.pack_into("<I", self.out, slot, target - slot)

    def write(self, obj) -> int:
        kind = obj[0]
        if kind == "string":
            self.pad(4)
            start = len(self.out)
            data = obj[1].encode()
            self.out += struct.pack("<I", len(data)) + data + b"\0"
            return start
        if kind == "scalars":
            _, data, alignment, count = obj
            self.pad(max(alignment, 4), 4)
            start = len(self.out)
            self.out += struct.pack("<I", count) + data
            return start
        if kind == "tables":
            self.pad(4)
            start = len(self.out)
            self.out += struct.pack("<I", len(obj[1])) + bytes(4 * len(obj[1]))
            for i, table in enumerate(obj[1]):
                self.patch(start + 4 + 4 * i, self.write(table))
            return start
        return self.write_table(obj[1])

    def write_table(self, fields: dict) -> int:
        slots = max(fields) + 1 if fields else 0
        offsets = [0] * slots
        size = 4
        for index in sorted(fields):
            width = len(fields[index][1]) if fields[index][0] == "scalar" else 4
            size += -size % width
            offsets[index] = size
            size += width
        size += -size % 4
        self.pad(2)
        vtable = len(self.out)
        self.out += struct.pack("<HH", 4 + 2 * slots, size) + b"".join(struct.pack("<H", o) for o in offsets)
        self.pad(4)
        start = len(self.out)
        self.out += struct.pack("<i", start - vtable) + bytes(size - 4)
        for index in sorted(fields):
            kind, value = fields[index]
            if kind == "scalar":
                self.out[start + offsets[index]:start + offsets[index] + len(value)] = value
        for index in sorted(fields):
            if fields[index][0] == "ref":
                self.patch(start + offsets[index], self.write(fields[index][1]))
        return start


def _flatbuffer(root: dict) -> bytes:
    writer = _Writer()
    writer.out += bytes(4) + b"TFL3"
    writer.patch(0, writer.write_table(root))
    return bytes(writer.out)


def _round_away(x: float) -> int:
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def _binary32(x: float) -> float:
    return float(np.float32(x))


def int8_plan(s: list[int], parameters: list[float], rows: list[list[float]]):
    """§3.3: (activations [(scale, zero)], layers [(weights, weight scales, biases, bias scales)])."""
    layers = len(s) - 1
    low, high = [0.0] * (layers + 1), [0.0] * (layers + 1)
    for row in rows:
        a = list(row)
        low[0], high[0] = min(low[0], min(a)), max(high[0], max(a))
        offset = 0
        for l in range(layers):
            n_in, n_out = s[l], s[l + 1]
            w = parameters[offset:offset + n_out * n_in]
            b = parameters[offset + n_out * n_in:offset + n_out * n_in + n_out]
            offset += n_out * (n_in + 1)
            out = []
            for o in range(n_out):
                total = b[o]
                for i in range(n_in):
                    total += w[o * n_in + i] * a[i]
                out.append(total if l == layers - 1 else max(0.0, total))
            low[l + 1], high[l + 1] = min(low[l + 1], min(out)), max(high[l + 1], max(out))
            a = out
    activations = []
    for m, big_m in zip(low, high):
        scale = _binary32(max(big_m - m, 2.0 ** -16) / 255)
        activations.append((scale, min(max(_round_away(-128 - m / scale), -128), 127)))
    planned = []
    offset = 0
    for l in range(layers):
        n_in, n_out = s[l], s[l + 1]
        weights, weight_scales, biases, bias_scales = [], [], [], []
        for o in range(n_out):
            row = parameters[offset + o * n_in:offset + (o + 1) * n_in]
            largest = max(abs(v) for v in row)
            scale = _binary32(largest / 127) if largest > 0 else 1.0
            weight_scales.append(scale)
            weights += [min(max(_round_away(v / scale), -127), 127) for v in row]
            bias_scale = _binary32(activations[l][0] * scale)
            q = _round_away(parameters[offset + n_out * n_in + o] / bias_scale)
            if abs(q) > 2 ** 31 - 1:
                raise Refused("unrepresentable")
            biases.append(q)
            bias_scales.append(bias_scale)
        planned.append((weights, weight_scales, biases, bias_scales))
        offset += n_out * (n_in + 1)
    return activations, planned


def tflite(model: str, s: list[int], round_: int, precision: str, parameters: list[float], plan=None) -> bytes:
    """§3.2: the model's FlatBuffer."""
    tensors, operators, buffers = [], [], [b""]

    def tensor(name, shape, type_, data=None, quantization=None, batched=True) -> int:
        """batched: an activation, whose shape signature has a dynamic batch (§3.2)."""
        buffer = 0
        if data is not None:
            buffers.append(data)
            buffer = len(buffers) - 1
        tensors.append((name, shape, type_, buffer, quantization, data is None and batched))
        return len(tensors) - 1

    def operator(code, version, inputs, output, relu=None):
        operators.append((code, version, inputs, [output], relu))

    FLOAT32, FLOAT16, INT32, INT8 = 0, 1, 2, 9
    DEQUANTIZE, FULLY_CONNECTED, SOFTMAX, QUANTIZE = 6, 9, 25, 114
    layers = len(s) - 1
    current = tensor("features", [1, s[0]], FLOAT32)
    if precision == "int8":
        scale, zero = plan[0][0]
        quantized = tensor("features.int8", [1, s[0]], INT8, quantization=([scale], [zero]))
        operator(QUANTIZE, 1, [current], quantized)
        current = quantized
    offset = 0
    for l in range(layers):
        n_in, n_out = s[l], s[l + 1]
        w = np.asarray(parameters[offset:offset + n_out * n_in], dtype=np.float64)
        b = np.asarray(parameters[offset + n_out * n_in:offset + n_out * (n_in + 1)], dtype=np.float64)
        offset += n_out * (n_in + 1)
        if precision == "float32":
            weight = tensor(f"layer{l}.weight", [n_out, n_in], FLOAT32, w.astype("<f4").tobytes())
            bias = tensor(f"layer{l}.bias", [n_out], FLOAT32, b.astype("<f4").tobytes())
        elif precision == "float16":
            half_w = tensor(f"layer{l}.weight.half", [n_out, n_in], FLOAT16, w.astype("<f2").tobytes())
            half_b = tensor(f"layer{l}.bias.half", [n_out], FLOAT16, b.astype("<f2").tobytes())
            weight = tensor(f"layer{l}.weight", [n_out, n_in], FLOAT32, batched=False)
            bias = tensor(f"layer{l}.bias", [n_out], FLOAT32, batched=False)
            operator(DEQUANTIZE, 3, [half_w], weight)
            operator(DEQUANTIZE, 3, [half_b], bias)
        else:
            qw, ws, qb, bs = plan[1][l]
            weight = tensor(f"layer{l}.weight", [n_out, n_in], INT8, struct.pack(f"<{len(qw)}b", *qw),
                            (ws, [0] * n_out))
            bias = tensor(f"layer{l}.bias", [n_out], INT32, struct.pack(f"<{len(qb)}i", *qb), (bs, [0] * n_out))
        last = l == layers - 1
        name = ("logits.int8" if precision == "int8" else "logits") if last else f"layer{l}.activation"
        if precision == "int8":
            scale, zero = plan[0][l + 1]
            output = tensor(name, [1, n_out], INT8, quantization=([scale], [zero]))
        else:
            output = tensor(name, [1, n_out], FLOAT32)
        operator(FULLY_CONNECTED, 4 if precision == "int8" else 1, [current, weight, bias], output, relu=not last)
        current = output
    classes = s[-1]
    if precision == "int8":
        probabilities = tensor("probabilities.int8", [1, classes], INT8, quantization=([1 / 256], [-128]))
        operator(SOFTMAX, 2, [current], probabilities)
        logits_out = tensor("logits", [1, classes], FLOAT32)
        operator(DEQUANTIZE, 2, [current], logits_out)
        probabilities_out = tensor("probabilities", [1, classes], FLOAT32)
        operator(DEQUANTIZE, 2, [probabilities], probabilities_out)
    else:
        probabilities = tensor("probabilities", [1, classes], FLOAT32)
        operator(SOFTMAX, 1, [current], probabilities)

    codes = []
    for code, version, *_ in operators:
        if (code, version) not in codes:
            codes.append((code, version))
    metadata = [("veil.model", model), ("veil.precision", precision), ("veil.round", str(round_))]
    for _, value in metadata:
        buffers.append(value.encode())
    tensor_tables = []
    for name, shape, type_, buffer, quantization, activation in tensors:
        fields = {0: _ref(_vector("i", shape)), 1: _u8(type_), 2: _u32(buffer), 3: _ref(_string(name))}
        if quantization is not None:
            scales, zeros = quantization
            fields[4] = _ref(_table({2: _ref(_vector("f", scales)), 3: _ref(_vector("q", zeros)), 6: _i32(0)}))
        if activation:
            fields[7] = _ref(_vector("i", [-1] + shape[1:]))
        tensor_tables.append(_table(fields))
    operator_tables = []
    for code, version, inputs, outputs, relu in operators:
        fields = {0: _u32(codes.index((code, version))), 1: _ref(_vector("i", inputs)), 2: _ref(_vector("i", outputs))}
        if code == FULLY_CONNECTED:
            fields[3] = _u8(8)
            fields[4] = _ref(_table({0: _i8(1 if relu else 0)}))
        elif code == SOFTMAX:
            fields[3] = _u8(9)
            fields[4] = _ref(_table({0: _f32(1.0)}))
        operator_tables.append(_table(fields))
    names = [t[0] for t in tensors]
    subgraph = _table({
        0: _ref(_tables(tensor_tables)),
        1: _ref(_vector("i", [0])),
        2: _ref(_vector("i", [names.index("logits"), names.index("probabilities")])),
        3: _ref(_tables(operator_tables)),
        4: _ref(_string("main")),
    })
    first_metadata_buffer = len(buffers) - len(metadata)
    root = {
        0: _u32(3),
        1: _ref(_tables([_table({0: _i8(code), 2: _i32(version), 3: _i32(code)}) for code, version in codes])),
        2: _ref(_tables([subgraph])),
        3: _ref(_string(f"{model} classifier trained by a Veil federation; Specs/export.md")),
        4: _ref(_tables([_table({0: _ref(_vector("B", list(data), 16))} if data else {}) for data in buffers])),
        6: _ref(_tables([_table({0: _ref(_string(name)), 1: _u32(first_metadata_buffer + i)})
                         for i, (name, _) in enumerate(metadata)])),
    }
    return _flatbuffer(root)


def tflite_export(model: str, features: int, classes: int, round_: int, precision: str, parameters: list,
                  rows) -> bytes:
    s = widths(model, features, classes)
    if round_ < 0 or len(parameters) != parameter_count(s) or not all(math.isfinite(v) for v in parameters):
        raise Refused("invalidCheckpoint")
    if precision == "float16" and any(abs(v) > FLOAT16_MAX for v in parameters):
        raise Refused("unrepresentable")
    plan = None
    if precision == "int8":
        if not rows or any(len(r) != features for r in rows):
            raise Refused("unrepresentable")
        plan = int8_plan(s, parameters, rows)
    return tflite(model, s, round_, precision, parameters, plan)


def tflite_load(data: bytes):
    """§3.4, read with LiteRT's own generated schema reader (not this file's writer): the
    model, precision, round, parameters, features and classes, or Refused. The file must be what
    §3.2 writes for the constants it holds."""
    from ai_edge_litert import schema_py_generated as schema
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise Refused("malformed")
    try:
        m = schema.Model.GetRootAsModel(data, 0)
        if m.Version() != 3:
            raise Refused("unsupported")
        buffers = [m.Buffers(i).DataAsNumpy() for i in range(m.BuffersLength())]
        buffers = [b.tobytes() if not isinstance(b, int) else b"" for b in buffers]
        meta = {m.Metadata(i).Name().decode(): buffers[m.Metadata(i).Buffer()].decode()
                for i in range(m.MetadataLength())}
        graph = m.Subgraphs(0)
        tensors = {graph.Tensors(i).Name().decode(): graph.Tensors(i) for i in range(graph.TensorsLength())}
    except Refused:
        raise
    except Exception:  # the generated reader indexes out of range on a broken file
        raise Refused("malformed")
    precision, model, round_text = meta.get("veil.precision"), meta.get("veil.model"), meta.get("veil.round", "")
    if precision not in ("float32", "float16", "int8") or model is None or not round_text.isdigit():
        raise Refused("unsupported")
    suffix = ".half" if precision == "float16" else ""
    s: list[int] = []
    while f"layer{max(len(s) - 1, 0)}.weight{suffix}" in tensors:
        shape = list(tensors[f"layer{max(len(s) - 1, 0)}.weight{suffix}"].ShapeAsNumpy())
        if len(shape) != 2 or (s and s[-1] != shape[1]):
            raise Refused("unsupported")
        if not s:
            s.append(int(shape[1]))
        s.append(int(shape[0]))
    if len(s) < 2 or s[-1] < 2:
        raise Refused("unsupported")
    spec = "softmax" if len(s) == 2 else "mlp:" + ",".join(str(w) for w in s[1:-1])
    if spec != model:
        raise Refused("unsupported")
    parameters: list[float] = []
    plan = None
    if precision in ("float32", "float16"):
        dtype = "<f2" if precision == "float16" else "<f4"
        for l in range(len(s) - 1):
            for name in (f"layer{l}.weight{suffix}", f"layer{l}.bias{suffix}"):
                values = np.frombuffer(buffers[tensors[name].Buffer()], dtype=dtype)
                parameters += [float(v) for v in values.astype(np.float64)]
    else:
        activations = []
        for name in ["features.int8"] + [f"layer{l}.activation" for l in range(len(s) - 2)] + ["logits.int8"]:
            q = tensors[name].Quantization() if name in tensors else None
            if q is None or q.ScaleLength() != 1:
                raise Refused("unsupported")
            activations.append((float(q.Scale(0)), int(q.ZeroPoint(0))))
        layers = []
        for l in range(len(s) - 1):
            w, b = tensors[f"layer{l}.weight"], tensors[f"layer{l}.bias"]
            wq, bq = w.Quantization(), b.Quantization()
            weights = list(np.frombuffer(buffers[w.Buffer()], dtype="<i1").astype(int))
            biases = list(np.frombuffer(buffers[b.Buffer()], dtype="<i4").astype(int))
            ws = [float(wq.Scale(i)) for i in range(wq.ScaleLength())]
            bs = [float(bq.Scale(i)) for i in range(bq.ScaleLength())]
            layers.append((weights, ws, biases, bs))
            n_in = s[l]
            parameters += [q * ws[i // n_in] for i, q in enumerate(weights)] + [q * c for q, c in zip(biases, bs)]
        plan = (activations, layers)
    if not all(math.isfinite(v) for v in parameters) or len(parameters) != parameter_count(s):
        raise Refused("unsupported")
    try:
        rewritten = tflite(model, s, int(round_text), precision, parameters, plan)
    except (struct.error, IndexError, ValueError):
        raise Refused("unsupported")
    if rewritten != data:
        raise Refused("unsupported")
    return model, precision, int(round_text), parameters, s[0], s[-1]


def check_tflite(group: dict, test: dict, expect) -> None:
    _check(test, expect, lambda: tflite_export(test["model"], test["features"], test["classes"], test["round"],
                                               test["precision"], test["parameters"], test.get("calibration")),
           tflite_load)
