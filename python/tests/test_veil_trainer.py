"""Tests of the veil_trainer package (Specs/trainer.md): a request laid out as §3 says, read
back, trained on, and written as the result Veil reads. Standard library and NumPy only."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import veil_trainer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def make_request(folder, data=None, seed=7):
    """A version-1 request for softmax on 3 features and 2 classes, written from the spec."""
    os.makedirs(os.path.join(folder, "global"))
    os.makedirs(os.path.join(folder, "result"))
    weight = np.arange(6, dtype=np.float64).reshape(2, 3) / 10
    bias = np.array([0.5, -0.5])
    np.save(os.path.join(folder, "global/0.npy"), weight)
    np.save(os.path.join(folder, "global/1.npy"), bias)
    body = {
        "format": "veil-trainer", "version": 1, "round": 3, "seed": seed, "model": "softmax",
        "features": 3, "classes": 2, "algorithm": "fedavg", "local_epochs": 2, "batch_size": 2,
        "learning_rate": 0.5, "momentum": 0.0, "weight_decay": 0.0, "proximal_mu": 0.0,
        "tensors": [
            {"name": "layers.0.weight", "shape": [2, 3], "global": "global/0.npy", "result": "result/0.npy"},
            {"name": "layers.0.bias", "shape": [2], "global": "global/1.npy", "result": "result/1.npy"},
        ],
        "result": "result.json", "a_later_key": "ignored",
    }
    if data:
        body["data"] = data
    path = os.path.join(folder, "request.json")
    with open(path, "w") as f:
        json.dump(body, f)
    return path


class ExchangeTests(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp()
        self.path = make_request(self.folder)

    def test_reads_the_request_and_writes_a_result_veil_reads(self):
        request = veil_trainer.read_request(self.path)
        self.assertEqual(request.round, 3)
        self.assertEqual([t.name for t in request.tensors], ["layers.0.weight", "layers.0.bias"])
        self.assertEqual(request.global_tensors["layers.0.bias"].tolist(), [0.5, -0.5])
        trained = {name: array + 1 for name, array in request.global_tensors.items()}
        # float32 and Fortran order are fine: the package writes float64 in C order.
        trained["layers.0.weight"] = np.asfortranarray(trained["layers.0.weight"].astype(np.float32))
        veil_trainer.write_result(request, trained, 12, {"loss": 0.5})
        with open(os.path.join(self.folder, "result.json")) as f:
            self.assertEqual(json.load(f), {"format": "veil-trainer", "version": 1, "examples": 12,
                                            "metrics": {"loss": 0.5}})
        weight = np.load(os.path.join(self.folder, "result/0.npy"))
        self.assertEqual(weight.dtype, np.float64)
        self.assertTrue(weight.flags["C_CONTIGUOUS"])
        np.testing.assert_allclose(weight, np.arange(6).reshape(2, 3) / 10 + 1, rtol=1e-7)

    def test_the_environment_names_the_request(self):
        os.environ[veil_trainer.REQUEST_VARIABLE] = self.path
        try:
            self.assertEqual(veil_trainer.read_request().seed, 7)
        finally:
            del os.environ[veil_trainer.REQUEST_VARIABLE]
        with self.assertRaisesRegex(veil_trainer.ExchangeError, "VEIL_TRAINER_REQUEST is not set"):
            veil_trainer.read_request()

    def test_a_wrong_result_is_refused_by_name_and_nothing_is_written(self):
        request = veil_trainer.read_request(self.path)
        good = {name: array for name, array in request.global_tensors.items()}
        cases = [
            (dict(good, **{"layers.0.bias": np.zeros(3)}), 5, "shape"),
            (dict(good, **{"layers.0.bias": np.array([np.nan, 0])}), 5, "not finite"),
            ({"layers.0.weight": good["layers.0.weight"]}, 5, "missing"),
            (dict(good, extra=np.zeros(1)), 5, "not in the schema"),
            (good, 0, "examples"),
            (good, 2.0, "examples"),
            (good, True, "examples"),
        ]
        for tensors, examples, message in cases:
            with self.assertRaisesRegex(veil_trainer.ExchangeError, message):
                veil_trainer.write_result(request, tensors, examples)
        with self.assertRaisesRegex(veil_trainer.ExchangeError, "metric"):
            veil_trainer.write_result(request, good, 5, {"loss": float("inf")})
        self.assertFalse(os.path.exists(os.path.join(self.folder, "result.json")))

    def test_another_version_is_refused(self):
        with open(self.path) as f:
            body = json.load(f)
        body["version"] = 2
        with open(self.path, "w") as f:
            json.dump(body, f)
        with self.assertRaisesRegex(veil_trainer.ExchangeError, "version 1"):
            veil_trainer.read_request(self.path)


class NumpyExampleTests(unittest.TestCase):
    """examples/numpy-logistic/train.py: one round on four rows, against the SGD written out."""

    def test_one_round_is_the_plans_sgd(self):
        folder = tempfile.mkdtemp()
        rows = np.array([[0.0, 1.0, 0.5, 1], [1.0, 0.0, 0.25, 0], [0.5, 0.5, 0.0, 1], [1.0, 1.0, 1.0, 0]])
        data = os.path.join(folder, "rows.csv")
        np.savetxt(data, rows, delimiter=",")
        path = make_request(os.path.join(folder, "round"), data=data)
        env = dict(os.environ, VEIL_TRAINER_REQUEST=path)
        script = os.path.join(ROOT, "examples", "numpy-logistic", "train.py")
        subprocess.run([sys.executable, script], env=env, check=True)
        with open(os.path.join(folder, "round", "result.json")) as f:
            self.assertEqual(json.load(f)["examples"], 4)
        w = np.load(os.path.join(folder, "round", "result/0.npy"))
        b = np.load(os.path.join(folder, "round", "result/1.npy"))
        # The same two epochs of batches of two, in the order the example draws from its seed.
        x, y = rows[:, :3], rows[:, 3].astype(int)
        ew, eb = np.arange(6).reshape(2, 3) / 10, np.array([0.5, -0.5])
        rng = np.random.default_rng(7)
        for _ in range(2):
            order = rng.permutation(4)
            for start in (0, 2):
                r = order[start:start + 2]
                z = x[r] @ ew.T + eb
                p = np.exp(z - z.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(2), y[r]] -= 1
                ew = ew - 0.5 * (p.T @ x[r] / 2)
                eb = eb - 0.5 * p.mean(axis=0)
        np.testing.assert_allclose(w, ew, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b, eb, rtol=1e-12, atol=1e-15)


if __name__ == "__main__":
    unittest.main()
