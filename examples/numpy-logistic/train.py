#!/usr/bin/env python3
"""Multinomial logistic regression in NumPy, as a Veil trainer (Specs/trainer.md).

Veil runs this once per round. It reads its rows from the CSV file the request's `data` names
(features..., label; join.json's trainer.data) and trains the global model, a softmax
regression with tensors layers.0.weight (classes x features) and layers.0.bias (classes), by
minibatch SGD as the training plan says: epochs, batch size, learning rate, momentum, weight
decay and FedProx's proximal term. It returns its parameters and its number of rows; Veil
clips, encodes, adds noise and masks.
"""

import os
import sys

import numpy as np

# The package lives in the repository's python/ folder (or: pip install ./python).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import veil_trainer  # noqa: E402


def load(path, features):
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    if table.shape[1] != features + 1:
        raise veil_trainer.ExchangeError("%s has %d columns, the model wants %d features and a label"
                                         % (path, table.shape[1], features))
    return table[:, :-1], table[:, -1].astype(np.int64)


def train(request):
    if request.model != "softmax":
        raise veil_trainer.ExchangeError("this example trains softmax, not %s" % request.model)
    if not request.data:
        raise veil_trainer.ExchangeError("no data: set trainer.data to a CSV file")
    x, y = load(request.data, request.features)
    start_w = request.global_tensors["layers.0.weight"]
    start_b = request.global_tensors["layers.0.bias"]
    w, b = start_w.copy(), start_b.copy()
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    rng = np.random.default_rng(request.seed)
    lr, mu, wd, prox = request.learning_rate, request.momentum, request.weight_decay, request.proximal_mu
    loss = 0.0
    for _ in range(request.local_epochs):
        order = rng.permutation(len(y))
        losses = []
        for start in range(0, len(order), request.batch_size):
            rows = order[start:start + request.batch_size]
            logits = x[rows] @ w.T + b
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            losses.append(-np.mean(np.log(np.maximum(p[np.arange(len(rows)), y[rows]], np.finfo(float).tiny))))
            p[np.arange(len(rows)), y[rows]] -= 1
            gw = p.T @ x[rows] / len(rows) + prox * (w - start_w)
            gb = p.mean(axis=0) + prox * (b - start_b)
            if mu > 0:
                vw = mu * vw + gw + wd * w
                vb = mu * vb + gb + wd * b
                w -= lr * vw
                b -= lr * vb
            else:
                w -= lr * (gw + wd * w)
                b -= lr * (gb + wd * b)
        loss = float(np.mean(losses)) if losses else 0.0
    return {"layers.0.weight": w, "layers.0.bias": b}, len(y), {"loss": loss}


if __name__ == "__main__":
    veil_trainer.run(train)
