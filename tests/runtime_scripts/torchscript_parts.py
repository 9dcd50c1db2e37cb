"""Clean: a classifier whose loss (a focal loss with label smoothing) and feature normalizer are compiled
with torch.jit.script, as production code does for speed. TorchScript resolves the torch functions they
call (F.cross_entropy, torch.clamp) by identity, so dllint's wrappers around them must stay
invisible to it: the script runs under confirm as under python.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


@torch.jit.script
def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    per_sample = F.cross_entropy(logits, labels, reduction="none", label_smoothing=0.05)
    confidence = torch.exp(-per_sample)
    return ((1.0 - confidence) ** gamma * per_sample).mean()


@torch.jit.script
def normalize_features(x: torch.Tensor) -> torch.Tensor:
    norms = torch.clamp(x.norm(p=2, dim=1, keepdim=True), min=1e-6)
    return x / norms * float(x.size(1)) ** 0.5


class Scorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.body(normalize_features(x))


torch.manual_seed(0)
features = torch.randn(192, 10)
labels = features[:, :3].argmax(dim=1)
loader = DataLoader(TensorDataset(features, labels), batch_size=32, shuffle=True)
model = Scorer()
scripted_head = torch.jit.script(nn.Linear(3, 3))
optimizer = torch.optim.Adam(list(model.parameters()) + list(scripted_head.parameters()), lr=1e-2)
for epoch in range(4):
    for x, y in loader:
        optimizer.zero_grad()
        loss = focal_loss(scripted_head(model(x)), y)
        loss.backward()
        optimizer.step()
print(f"final loss {loss.item():.3f}")
