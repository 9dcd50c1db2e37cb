"""A linear regression with a learning rate too high for its feature scale: every step overshoots, and the
gradient norm grows several-fold per step while the loss is still finite (RT104). `--lr 0.02`: the clean
near-miss, the same model converging."""
import argparse

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.3)
arguments = parser.parse_args()
torch.manual_seed(0)
features = torch.randn(512, 10) * 3.0
targets = features @ torch.randn(10, 1) + 0.1 * torch.randn(512, 1)
model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=arguments.lr)
for epoch in range(10):
    for start in range(0, 512, 64):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(features[start:start + 64]), targets[start:start + 64])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4g}")
