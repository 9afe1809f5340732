#!/usr/bin/env python3
"""Veil's exported ONNX models, checked by the ONNX project's own tools.

For each model file given:
- `onnx.checker.check_model(full_check=True)` accepts it (schema, opset, types and shapes);
- onnxruntime (CPU) runs it on the test set in PREDICTIONS, the JSON written by
  `veil model evaluate --predictions` (features, labels and Veil's binary64 probabilities);
- the file's declared interface is the one Specs/export.md gives: input `features`
  [batch, F] float32, outputs `logits` and `probabilities` [batch, C] float32, opset 13;
- the predicted classes agree with Veil's on at least 99.5% of examples, and for a float32
  model every probability is within 1e-5 of Veil's.

Prints one JSON object per model (agreement, largest probability difference, accuracy) and
exits 1 if any check fails. Usage: check_onnx.py PREDICTIONS.json MODEL.onnx [MODEL.onnx …]
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import onnxruntime


def check(path: str, features: np.ndarray, labels: np.ndarray, veil: np.ndarray) -> tuple[dict, list[str]]:
    failures: list[str] = []
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    if opsets != {"ai.onnx": 13}:
        failures.append(f"opsets {opsets}, expected ai.onnx 13 only")
    precision = {p.key: p.value for p in model.metadata_props}.get("veil.precision", "?")

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    outputs = [(o.name, o.type, o.shape) for o in session.get_outputs()]
    f, c = features.shape[1], veil.shape[1]
    if inputs != [("features", "tensor(float)", ["batch", f])]:
        failures.append(f"inputs {inputs}")
    if outputs != [(n, "tensor(float)", ["batch", c]) for n in ("logits", "probabilities")]:
        failures.append(f"outputs {outputs}")

    logits, probabilities = session.run(["logits", "probabilities"], {"features": features.astype(np.float32)})
    predicted = probabilities.argmax(axis=1)
    agreement = float((predicted == veil.argmax(axis=1)).mean())
    largest = float(np.abs(probabilities.astype(np.float64) - veil).max())
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    if not np.allclose(softmax, probabilities, atol=2e-3 if precision == "float16" else 1e-6):
        failures.append("probabilities are not the softmax of logits")
    if agreement < 0.995:
        failures.append(f"classes agree on {agreement:.4f} of examples, below 0.995")
    if precision == "float32" and largest > 1e-5:
        failures.append(f"a float32 probability differs from Veil's by {largest:.3g} > 1e-5")
    if precision not in ("float32", "float16"):
        failures.append(f"veil.precision is {precision!r}")
    report = {
        "model": path,
        "precision": precision,
        "examples": int(len(labels)),
        "agreement": agreement,
        "max_probability_difference": largest,
        "accuracy": float((predicted == labels).mean()),
        "veil_accuracy": float((veil.argmax(axis=1) == labels).mean()),
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
