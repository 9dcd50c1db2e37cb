"""Two ways to share one layer object between places. Design: a TabNet-style encoder whose decision steps
share one Linear on purpose (weights only: DL504 stays info). Bug: three blocks built around one
BatchNorm1d object, so every depth normalizes with the same running statistics (DL504, reported on the
normalization layer: the blocks themselves are distinct)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SharedStepEncoder(nn.Module):
    def __init__(self, width=16, steps=3):
        super().__init__()
        shared = nn.Linear(width, 2 * width)
        self.steps = nn.ModuleList(
            [nn.ModuleDict({"shared": shared, "own": nn.Linear(width, 2 * width)}) for _ in range(steps)])
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        for step in self.steps:
            x = F.glu(step["shared"](x)) + F.glu(step["own"](x))
        return self.head(x)


class SharedNormStack(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        norm = nn.BatchNorm1d(width)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(width, width), norm, nn.ReLU()) for _ in range(3)])
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


torch.manual_seed(0)
features, labels = torch.randn(128, 16), torch.randint(0, 2, (128,))
for model in (SharedStepEncoder(), SharedNormStack()):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for start in range(0, 128, 32):
        optimizer.zero_grad()
        F.cross_entropy(model(features[start:start + 32]), labels[start:start + 32]).backward()
        optimizer.step()
