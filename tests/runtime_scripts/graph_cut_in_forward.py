"""A sensor regressor whose forward rescales the encoder's features through numpy, trained with an L1
penalty on its weights, on synthetic signals.

Buggy (the default): the features leave autograd (`.detach().cpu().numpy()`) and come back through
`torch.from_numpy`, so the encoder upstream of the cut never receives a gradient; and the L1 penalty is
computed on `p.data`, a constant that changes the loss value and no gradient (DL404 twice). `--layout
torch`: the clean near-miss, the same scaling and penalty in torch operations, with an EMA copy of the
model updated through `.data` under no_grad after each step.
"""
import argparse
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class SensorRegressor(nn.Module):
    def __init__(self, through_numpy):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(12, 32), nn.Tanh())
        self.head = nn.Linear(32, 1)
        self.through_numpy = through_numpy

    def forward(self, signals):
        features = self.encoder(signals)
        if self.through_numpy:
            array = features.detach().cpu().numpy()
            array = array / (abs(array).max(axis=1, keepdims=True) + 1e-6)
            features = torch.from_numpy(array).to(signals.device)
        else:
            features = features / (features.abs().amax(dim=1, keepdim=True) + 1e-6)
        return self.head(features).squeeze(1)


def l1_penalty(model, through_numpy):
    if through_numpy:
        return sum(p.data.abs().sum() for p in model.parameters())
    return sum(p.abs().sum() for p in model.parameters())


def train(model, average, loader, optimizer, through_numpy, l1=1e-4):
    for epoch in range(3):
        for x, y in loader:
            loss = F.mse_loss(model(x), y) + l1 * l1_penalty(model, through_numpy)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for kept, live in zip(average.parameters(), model.parameters()):
                    kept.data.mul_(0.9).add_(0.1 * live.data)


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["numpy", "torch"], default="numpy")
through_numpy = parser.parse_args().layout == "numpy"
torch.manual_seed(0)
signals = torch.randn(256, 12)
readings = signals[:, :4].sum(dim=1)
model = SensorRegressor(through_numpy)
train(model, copy.deepcopy(model), DataLoader(TensorDataset(signals, readings), batch_size=32, shuffle=True),
      torch.optim.Adam(model.parameters(), lr=1e-2), through_numpy)
