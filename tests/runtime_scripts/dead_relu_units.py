"""A tabular classifier whose hidden layer is initialised with a large negative bias (a "sparse
activations" trick gone wrong): most ReLU units output zero for every sample from the start and never
recover (RT105). `--bias 0`: the clean near-miss, the same network with the default initialisation."""
import argparse

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--bias", type=float, default=-4.0)
arguments = parser.parse_args()
torch.manual_seed(0)
features = torch.randn(512, 20)
labels = (features[:, :5].sum(dim=1) > 0).long()
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
if arguments.bias:
    nn.init.constant_(model[0].bias, arguments.bias)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(5):
    for start in range(0, 512, 64):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(features[start:start + 64]), labels[start:start + 64])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
