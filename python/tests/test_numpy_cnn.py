"""The NumPy CNN example's gradients against finite differences, so that the example the
README points to trains what its schema says."""

import importlib.util
import os
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("cnn", os.path.join(HERE, "..", "..", "examples", "numpy-cnn", "train.py"))
cnn = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(cnn)


class NumpyCNNTests(unittest.TestCase):
    def test_gradients_match_finite_differences(self):
        rng = np.random.default_rng(3)
        params = {name: rng.normal(0, 0.3, shape) for name, shape in cnn.SCHEMA.items()}
        x = rng.uniform(0, 1, (5, 64))
        y = rng.integers(0, 10, 5)
        _, gradients = cnn.loss_and_gradients(params, x, y)
        h = 1e-6
        for name, value in params.items():
            for index in [(0,) * value.ndim, tuple(s - 1 for s in value.shape)]:
                saved = value[index]
                value[index] = saved + h
                up, _ = cnn.loss_and_gradients(params, x, y)
                value[index] = saved - h
                down, _ = cnn.loss_and_gradients(params, x, y)
                value[index] = saved
                self.assertAlmostEqual(gradients[name][index], (up - down) / (2 * h), places=6, msg=name)

    def test_the_convolution_is_channel_major_like_torch_flatten(self):
        # One filter that copies the kernel's centre pixel: channel 0's activations are the
        # inner 6x6 pixels in row order, at positions 0…35 of the flattened hidden layer.
        params = {name: np.zeros(shape) for name, shape in cnn.SCHEMA.items()}
        params["conv.weight"][0, 0, 1, 1] = 1
        x = np.arange(64, dtype=float).reshape(1, 64)
        _, (_, _, hidden) = cnn.forward(params, x)
        inner = x.reshape(8, 8)[1:7, 1:7].reshape(36)
        np.testing.assert_array_equal(hidden[0, :36], inner)
        np.testing.assert_array_equal(hidden[0, 36:], np.zeros(108))


if __name__ == "__main__":
    unittest.main()
