"""The Veil trainer exchange (Specs/trainer.md, version 1): standard library and NumPy only.

Veil runs the trainer once per round with VEIL_TRAINER_REQUEST naming request.json. The
trainer reads the global model, trains on its own data, and writes its parameters after
training and the number of examples it trained on. Veil does everything else: clipping,
encoding, differential-privacy noise, masking or encryption, and the privacy ledger.

    import veil_trainer

    def train(request):
        params = {name: array.copy() for name, array in request.global_tensors.items()}
        ...  # local training on your own data
        return params, examples

    veil_trainer.run(train)
"""

import json
import math
import os
import sys

import numpy as np

FORMAT = "veil-trainer"
VERSION = 1
REQUEST_VARIABLE = "VEIL_TRAINER_REQUEST"
MAX_EXAMPLES = 2**53

__all__ = ["ExchangeError", "Request", "TensorSpec", "read_request", "write_result", "run"]


class ExchangeError(Exception):
    """A request or result that does not follow Specs/trainer.md."""


class TensorSpec:
    """One named tensor of the model: its name, its shape, and its two files."""

    def __init__(self, name, shape, global_file, result_file):
        self.name = name
        self.shape = tuple(shape)
        self.global_file = global_file
        self.result_file = result_file

    def __repr__(self):
        return "TensorSpec(%r, %r)" % (self.name, self.shape)


class Request:
    """One round's request: the training plan, the tensor schema and the global tensors."""

    PLAN = ("round", "seed", "model", "features", "classes", "algorithm", "local_epochs",
            "batch_size", "learning_rate", "momentum", "weight_decay", "proximal_mu")

    def __init__(self, folder, body):
        self.folder = folder
        for key in self.PLAN:
            if key not in body:
                raise ExchangeError("request.json has no %r" % key)
            setattr(self, key, body[key])
        self.data = body.get("data")
        self.result = body.get("result", "result.json")
        self.tensors = [TensorSpec(t["name"], t["shape"], t["global"], t["result"]) for t in body["tensors"]]
        self.global_tensors = {}
        for spec in self.tensors:
            array = np.load(os.path.join(folder, spec.global_file), allow_pickle=False)
            if array.shape != spec.shape:
                raise ExchangeError("global tensor %r has shape %r, the schema says %r"
                                    % (spec.name, array.shape, spec.shape))
            self.global_tensors[spec.name] = array.astype(np.float64)

    @property
    def plan(self):
        """The training plan as a dict (round, seed, epochs, learning rate…)."""
        return {key: getattr(self, key) for key in self.PLAN}


def read_request(path=None):
    """Reads the round's request: `path`, or the file VEIL_TRAINER_REQUEST names."""
    path = path or os.environ.get(REQUEST_VARIABLE)
    if not path:
        raise ExchangeError("no request: %s is not set (is this run by veil?)" % REQUEST_VARIABLE)
    with open(path, "r", encoding="utf-8") as f:
        body = json.load(f)
    if body.get("format") != FORMAT or body.get("version") != VERSION:
        raise ExchangeError("request.json is not %s version %d" % (FORMAT, VERSION))
    return Request(os.path.dirname(os.path.abspath(path)), body)


def write_result(request, tensors, examples, metrics=None):
    """Writes the trained parameters (a dict name -> array with the schema's shapes), the number
    of examples trained on and optional metrics (name -> number, kept on the participant).
    Checks everything Veil checks first, so a mistake is reported here, by name."""
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) \
            or not 1 <= int(examples) <= MAX_EXAMPLES:
        raise ExchangeError("examples must be a whole number in 1...2^53, not %r" % (examples,))
    names = {spec.name for spec in request.tensors}
    extra = sorted(set(tensors) - names)
    if extra:
        raise ExchangeError("tensors not in the schema: %s" % ", ".join(extra))
    arrays = []
    for spec in request.tensors:
        if spec.name not in tensors:
            raise ExchangeError("the tensor %r is missing" % spec.name)
        array = np.asarray(tensors[spec.name], dtype="<f8")
        if array.shape != spec.shape:
            raise ExchangeError("the tensor %r has shape %r, the schema says %r"
                                % (spec.name, array.shape, spec.shape))
        if not np.all(np.isfinite(array)):
            raise ExchangeError("the tensor %r has a value that is not finite" % spec.name)
        arrays.append((spec, np.ascontiguousarray(array)))
    body = {"format": FORMAT, "version": VERSION, "examples": int(examples)}
    if metrics:
        for name, value in metrics.items():
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(float(value)):
                raise ExchangeError("the metric %r is not a finite number" % name)
        body["metrics"] = {str(name): float(value) for name, value in metrics.items()}
    for spec, array in arrays:
        path = os.path.join(request.folder, spec.result_file)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, array, allow_pickle=False)
    # result.json last, and atomically: Veil reads nothing until it is whole.
    final = os.path.join(request.folder, request.result)
    with open(final + ".partial", "w", encoding="utf-8") as f:
        json.dump(body, f)
    os.replace(final + ".partial", final)


def run(train, path=None):
    """Reads the request, calls train(request) -> (tensors, examples) or (tensors, examples,
    metrics), and writes the result. A failure is printed to stderr (Veil keeps it in the
    participant's log, never sends it) and ends the process with status 1."""
    try:
        request = read_request(path)
        returned = train(request)
        tensors, examples = returned[0], returned[1]
        metrics = returned[2] if len(returned) > 2 else None
        write_result(request, tensors, examples, metrics)
    except ExchangeError as error:
        print("veil_trainer: %s" % error, file=sys.stderr)
        sys.exit(1)
