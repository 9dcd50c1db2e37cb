"""House-price style regression on synthetic tabular data.

Buggy (the default): the network ends in Linear(16, 1), so its output is (batch, 1), while the targets
of the TensorDataset are (batch,); MSELoss broadcasts the pair to (batch, batch) and regresses every
prediction towards every price of the batch (DL209). `--layout squeezed`: the clean near-miss, the same
model with `.squeeze(1)` on its output, and an auxiliary two-column head compared with a two-column
target (equal shapes).
"""
import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["column", "squeezed"], default="column")
squeezed = parser.parse_args().layout == "squeezed"
torch.manual_seed(0)
prices = torch.randn(256)
features = torch.stack([prices + torch.randn(256) for _ in range(8)], dim=1)
loader = DataLoader(TensorDataset(features, prices), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
auxiliary = nn.Linear(8, 2)
optimizer = torch.optim.Adam(list(model.parameters()) + list(auxiliary.parameters()), lr=1e-2)
criterion = nn.MSELoss()
for epoch in range(3):
    for x, y in loader:
        optimizer.zero_grad()
        if squeezed:
            loss = criterion(model(x).squeeze(1), y)
            loss = loss + criterion(auxiliary(x), torch.stack([y, -y], dim=1))
        else:
            loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
