"""Buggy: DL104. The epoch's running total adds the loss tensor itself, so each epoch keeps every step's
autograd graph alive until the total is reset at the next epoch: by the last step only a few graphs
are alive, but over the run the memory grows by an epoch's worth of graphs."""
import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
features, targets = torch.randn(256, 8), torch.randn(256, 1)
for epoch in range(5):
    epoch_loss = 0
    for start in range(0, 256, 32):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(features[start:start + 32]), targets[start:start + 32])
        loss.backward()
        optimizer.step()
        epoch_loss += loss
    print(f"epoch {epoch}: mean loss {epoch_loss.item() / 8:.4f}")
