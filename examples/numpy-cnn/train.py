#!/usr/bin/env python3
"""A small convolutional network in NumPy, as a Veil trainer for an architecture Veil does not
know (Specs/trainer.md §2.1).

The coordinator describes the model only by its tensors (serve.json):

    "model": "tensors:conv.weight=4x1x3x3,conv.bias=4,fc.weight=10x144,fc.bias=10",
    "evaluate": null

the same names and shapes as the PyTorch module in ../pytorch-cnn: a 3x3 convolution with four
filters over the 8x8 digit (no padding: 4x6x6), ReLU, flattened channel by channel, then a
linear layer to ten classes. Veil runs this once per round; it reads its rows (64 pixel
features, then the label) from the CSV file the request's `data` names, trains by minibatch SGD
as the plan says (epochs, batch size, learning rate, momentum, weight decay, FedProx's proximal
term) and returns its parameters and its number of rows. Veil clips, encodes and masks.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import veil_trainer  # noqa: E402

SCHEMA = {"conv.weight": (4, 1, 3, 3), "conv.bias": (4,), "fc.weight": (10, 144), "fc.bias": (10,)}

# patch[p, k] is the pixel under kernel position k = 3*di + dj when the kernel's corner is at
# output position p = 6*i + j: the flat index (i + di)*8 + (j + dj).
PATCHES = np.array([[(i + di) * 8 + (j + dj) for di in range(3) for dj in range(3)]
                    for i in range(6) for j in range(6)])


def forward(params, x):
    """Logits, and what the backward pass needs."""
    patches = x[:, PATCHES]                                            # (B, 36, 9)
    conv = patches @ params["conv.weight"].reshape(4, 9).T + params["conv.bias"]  # (B, 36, 4)
    conv = conv.transpose(0, 2, 1)                                     # (B, 4, 36): channel-major
    hidden = np.maximum(conv, 0).reshape(len(x), 144)
    return hidden @ params["fc.weight"].T + params["fc.bias"], (patches, conv, hidden)


def loss_and_gradients(params, x, y):
    logits, (patches, conv, hidden) = forward(params, x)
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = -np.mean(np.log(np.maximum(p[rows, y], np.finfo(float).tiny)))
    p[rows, y] -= 1
    d_logits = p / len(y)
    d_hidden = (d_logits @ params["fc.weight"]).reshape(len(y), 4, 36) * (conv > 0)
    gradients = {
        "fc.weight": d_logits.T @ hidden,
        "fc.bias": d_logits.sum(axis=0),
        "conv.weight": np.einsum("bcp,bpk->ck", d_hidden, patches).reshape(4, 1, 3, 3),
        "conv.bias": d_hidden.sum(axis=(0, 2)),
    }
    return loss, gradients


def train(request):
    for spec in request.tensors:
        if SCHEMA.get(spec.name) != tuple(spec.shape):
            raise veil_trainer.ExchangeError("this example trains %s, not %s %s" % (SCHEMA, spec.name, spec.shape))
    if not request.data:
        raise veil_trainer.ExchangeError("no data: set trainer.data to a CSV file")
    table = np.loadtxt(request.data, delimiter=",", ndmin=2)
    if table.shape[1] != 65:
        raise veil_trainer.ExchangeError("%s has %d columns, not 64 pixels and a label" % (request.data, table.shape[1]))
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    start = request.global_tensors
    params = {name: start[name].copy() for name in SCHEMA}
    velocity = {name: np.zeros_like(value) for name, value in params.items()}
    rng = np.random.default_rng(request.seed)
    lr, mu, wd, prox = request.learning_rate, request.momentum, request.weight_decay, request.proximal_mu
    loss = 0.0
    for _ in range(request.local_epochs):
        order = rng.permutation(len(y))
        losses = []
        for first in range(0, len(order), request.batch_size):
            rows = order[first:first + request.batch_size]
            batch_loss, gradients = loss_and_gradients(params, x[rows], y[rows])
            losses.append(batch_loss)
            for name, g in gradients.items():
                g = g + prox * (params[name] - start[name]) + wd * params[name]
                if mu > 0:
                    velocity[name] = mu * velocity[name] + g
                    g = velocity[name]
                params[name] -= lr * g
        loss = float(np.mean(losses)) if losses else 0.0
    return params, len(y), {"loss": loss}


def accuracy(params, x, y):
    """The share of rows whose largest logit is their label (used by the tests)."""
    logits, _ = forward(params, x)
    return float(np.mean(np.argmax(logits, axis=1) == y))


if __name__ == "__main__":
    veil_trainer.run(train)
