#!/usr/bin/env python3
"""The small convolutional network of ../numpy-cnn in PyTorch, as a Veil trainer
(Specs/trainer.md). Not run by Veil's tests: PyTorch is a large download (see README.md).

serve.json describes the model by the module's state_dict names and shapes:

    "model": "tensors:conv.weight=4x1x3x3,conv.bias=4,fc.weight=10x144,fc.bias=10",
    "evaluate": null

Any module works the same way: print `{k: tuple(v.shape) for k, v in model.state_dict().items()}`
and write each entry as NAME=D1xD2x… in that order. Veil runs this once per round; it loads
the global tensors into the module, trains on its own rows as the plan says, and returns the
state_dict and its number of rows.
"""

import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import veil_trainer  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3)
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x.view(-1, 1, 8, 8))), 1))


def train(request):
    if not request.data:
        raise veil_trainer.ExchangeError("no data: set trainer.data to a CSV file (64 pixels, then the label)")
    table = np.loadtxt(request.data, delimiter=",", ndmin=2)
    x = torch.tensor(table[:, :-1], dtype=torch.float64)
    y = torch.tensor(table[:, -1], dtype=torch.int64)
    net = Net().double()
    state = net.state_dict()
    missing = set(state) ^ {spec.name for spec in request.tensors}
    if missing:
        raise veil_trainer.ExchangeError("the schema and the module differ in %s" % sorted(missing))
    net.load_state_dict({name: torch.from_numpy(array) for name, array in request.global_tensors.items()})
    start = {name: value.detach().clone() for name, value in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=request.learning_rate, momentum=request.momentum,
                                weight_decay=request.weight_decay)
    generator = torch.Generator().manual_seed(request.seed)
    loss = torch.tensor(0.0)
    for _ in range(request.local_epochs):
        order = torch.randperm(len(y), generator=generator)
        for first in range(0, len(order), request.batch_size):
            rows = order[first:first + request.batch_size]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(x[rows]), y[rows])
            if request.proximal_mu > 0:
                loss = loss + request.proximal_mu / 2 * sum(
                    ((p - start[name]) ** 2).sum() for name, p in net.named_parameters())
            loss.backward()
            optimizer.step()
    tensors = {name: value.detach().numpy() for name, value in net.state_dict().items()}
    return tensors, len(y), {"loss": float(loss)}


if __name__ == "__main__":
    veil_trainer.run(train)
