#!/usr/bin/env python3
"""Veil's exported models, checked by the runtimes devices use (Specs/export.md §2.6, §3.5).

For each model file given, by its extension:
- .onnx: `onnx.checker.check_model(full_check=True)` accepts it (schema, opset, types and
  shapes) and onnxruntime (CPU) runs it; the interface is input `features` [batch, F] float32,
  outputs `logits` and `probabilities` [batch, C] float32, opset 13 alone;
- .tflite: LiteRT's interpreter (`ai_edge_litert`, which verifies the FlatBuffer before it
  loads anything) loads it, the batch is resized to the whole test set, and it runs; the
  interface is input `features` [1, F] (signature [-1, F]) float32, outputs `logits` and
  `probabilities` [1, C] float32; an int8 file's fully-connected weights are int8 with one scale
  per output channel and zero points 0, its biases int32;
on the test set in PREDICTIONS, the JSON written by `veil model evaluate --predictions`
(features, labels and Veil's binary64 probabilities). The classes must agree with Veil's on at
least 99.5% of examples (99% for int8); float32 probabilities must be within 1e-5 of Veil's;
float16 and int8 accuracy within one point of Veil's.

Prints one JSON object per model (agreement, largest probability difference, accuracy) and
exits 1 if any check fails. Usage: check_models.py PREDICTIONS.json MODEL.onnx|MODEL.tflite …
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import onnxruntime
from ai_edge_litert.interpreter import Interpreter


def run_onnx(path: str, features: np.ndarray, classes: int, failures: list[str]) -> tuple[str, np.ndarray, np.ndarray]:
    """The file's precision and its logits and probabilities on features."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    if opsets != {"ai.onnx": 13}:
        failures.append(f"opsets {opsets}, expected ai.onnx 13 only")
    precision = {p.key: p.value for p in model.metadata_props}.get("veil.precision", "?")

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    outputs = [(o.name, o.type, o.shape) for o in session.get_outputs()]
    f, c = features.shape[1], classes
    if inputs != [("features", "tensor(float)", ["batch", f])]:
        failures.append(f"inputs {inputs}")
    if outputs != [(n, "tensor(float)", ["batch", c]) for n in ("logits", "probabilities")]:
        failures.append(f"outputs {outputs}")
    logits, probabilities = session.run(["logits", "probabilities"], {"features": features.astype(np.float32)})
    return precision, logits, probabilities


def run_tflite(path: str, features: np.ndarray, classes: int, failures: list[str]) -> tuple[str, np.ndarray, np.ndarray]:
    """The file's precision (from its veil.precision metadata) and its outputs on features."""
    interpreter = Interpreter(model_path=path)
    precision = _metadata(path).get("veil.precision", "?")
    (inp,) = interpreter.get_input_details()
    f = features.shape[1]
    if (inp["name"], list(inp["shape"]), list(inp["shape_signature"]), inp["dtype"]) != ("features", [1, f], [-1, f], np.float32):
        failures.append(f"input {inp['name']} {inp['shape']} {inp['shape_signature']} {inp['dtype']}")
    outputs = {o["name"]: o for o in interpreter.get_output_details()}
    for name in ("logits", "probabilities"):
        o = outputs.get(name)
        if o is None or list(o["shape"]) != [1, classes] or o["dtype"] != np.float32:
            failures.append(f"output {name}: {o}")
    if precision == "int8":
        for t in interpreter.get_tensor_details():
            q = t["quantization_parameters"]
            if t["name"].endswith(".weight"):
                if t["dtype"] != np.int8 or len(q["scales"]) != t["shape"][0] or np.any(q["zero_points"] != 0) \
                        or q["quantized_dimension"] != 0:
                    failures.append(f"{t['name']} is not int8 with one scale per output channel")
            if t["name"].endswith(".bias") and t["dtype"] != np.int32:
                failures.append(f"{t['name']} is not int32")
    interpreter.resize_tensor_input(inp["index"], [len(features), f])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], features.astype(np.float32))
    interpreter.invoke()
    result = {o["name"]: interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()}
    return precision, result["logits"], result["probabilities"]


def _metadata(path: str) -> dict[str, str]:
    """The model's metadata entries (name → UTF-8 text of its buffer), through LiteRT's own
    generated schema reader."""
    from ai_edge_litert import schema_py_generated as schema
    with open(path, "rb") as handle:
        model = schema.Model.GetRootAsModel(handle.read(), 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        entries[entry.Name().decode()] = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
    return entries


def check(path: str, features: np.ndarray, labels: np.ndarray, veil: np.ndarray) -> tuple[dict, list[str]]:
    failures: list[str] = []
    runner = run_tflite if path.endswith(".tflite") else run_onnx
    precision, logits, probabilities = runner(path, features, veil.shape[1], failures)

    predicted = probabilities.argmax(axis=1)
    agreement = float((predicted == veil.argmax(axis=1)).mean())
    largest = float(np.abs(probabilities.astype(np.float64) - veil).max())
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    # int8 probabilities are on a grid of 1/256, its logits on their own scale.
    tolerance = {"float32": 1e-6, "float16": 2e-3, "int8": 1.5 / 256}.get(precision, 0)
    if not np.allclose(softmax, probabilities, atol=tolerance):
        failures.append("probabilities are not the softmax of logits")
    least = 0.99 if precision == "int8" else 0.995
    if agreement < least:
        failures.append(f"classes agree on {agreement:.4f} of examples, below {least}")
    if precision == "float32" and largest > 1e-5:
        failures.append(f"a float32 probability differs from Veil's by {largest:.3g} > 1e-5")
    accuracy = float((predicted == labels).mean())
    veil_accuracy = float((veil.argmax(axis=1) == labels).mean())
    if abs(accuracy - veil_accuracy) > 0.01 + 1e-12:
        failures.append(f"accuracy {accuracy:.4f} is more than a point from Veil's {veil_accuracy:.4f}")
    if precision not in ("float32", "float16", "int8") or (precision == "int8" and runner is run_onnx):
        failures.append(f"veil.precision is {precision!r}")
    report = {
        "model": path,
        "precision": precision,
        "examples": int(len(labels)),
        "agreement": agreement,
        "max_probability_difference": largest,
        "accuracy": accuracy,
        "veil_accuracy": veil_accuracy,
        "failures": failures,
    }
    return report, failures


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(argv[1]) as handle:
        data = json.load(handle)
    features = np.asarray(data["features"], dtype=np.float64)
    labels = np.asarray(data["labels"], dtype=np.int64)
    veil = np.asarray(data["probabilities"], dtype=np.float64)
    failed = False
    for path in argv[2:]:
        try:
            report, failures = check(path, features, labels, veil)
        except Exception as error:  # the checker's and the runtime's refusals, reported per file
            report, failures = {"model": path, "failures": [f"{type(error).__name__}: {error}"]}, [str(error)]
        print(json.dumps(report, sort_keys=True))
        failed = failed or bool(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
