"""Two halves of a training step that lost each other (DL108). `--layout no-backward` (the default): the
loss is computed and the optimizer steps, but backward() was deleted with a debugging line.
`--layout no-step`: backward() runs at every batch and the optimizer never steps. `--layout lbfgs`: the
clean near-miss, an L-BFGS optimizer whose closure calls backward() inside step()."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


def fit_without_backward(model, optimizer, batches):
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = F.mse_loss(model(inputs), targets)
        optimizer.step()


def fit_without_step(model, optimizer, batches):
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = F.mse_loss(model(inputs), targets)
        loss.backward()


def fit_with_closure(model, optimizer, batches):
    for inputs, targets in batches:
        def closure():
            optimizer.zero_grad()
            loss = F.mse_loss(model(inputs), targets)
            loss.backward()
            return loss

        optimizer.step(closure)


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["no-backward", "no-step", "lbfgs"], default="no-backward")
layout = parser.parse_args().layout
torch.manual_seed(0)
features = torch.randn(256, 6)
targets = features @ torch.randn(6, 1)
batches = [(features[i:i + 32], targets[i:i + 32]) for i in range(0, 256, 32)]
model = nn.Linear(6, 1)
if layout == "lbfgs":
    fit_with_closure(model, torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4), batches * 3)
elif layout == "no-step":
    fit_without_step(model, torch.optim.SGD(model.parameters(), lr=0.05), batches * 3)
else:
    fit_without_backward(model, torch.optim.SGD(model.parameters(), lr=0.05), batches * 3)
