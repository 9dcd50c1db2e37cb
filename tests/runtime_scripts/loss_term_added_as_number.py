"""A multi-task model: class logits and a regression of a side target. Buggy (the default): the side loss
is added as a number (.item()), so the regression head runs at every step and never receives a
gradient (DL402). `--layout tensor`: the clean near-miss, both terms as tensors."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiTask(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(12, 32), nn.ReLU())
        self.classes = nn.Linear(32, 3)
        self.side = nn.Linear(32, 1)

    def forward(self, x):
        hidden = self.trunk(x)
        return self.classes(hidden), self.side(hidden)


def train_step(model, optimizer, inputs, labels, side_targets, as_number):
    optimizer.zero_grad()
    logits, side = model(inputs)
    side_loss = F.mse_loss(side.squeeze(1), side_targets)
    if as_number:
        loss = F.cross_entropy(logits, labels) + 0.5 * side_loss.detach().item()
    else:
        loss = F.cross_entropy(logits, labels) + 0.5 * side_loss
    loss.backward()
    optimizer.step()
    return loss.item()


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["number", "tensor"], default="number")
as_number = parser.parse_args().layout == "number"
torch.manual_seed(0)
inputs, labels, side_targets = torch.randn(256, 12), torch.randint(0, 3, (256,)), torch.randn(256)
model = MultiTask()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(4):
    for start in range(0, 256, 32):
        batch = slice(start, start + 32)
        train_step(model, optimizer, inputs[batch], labels[batch], side_targets[batch], as_number)
