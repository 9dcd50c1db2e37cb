"""Buggy: DL501 (the residual blocks live in a plain Python list, so model.parameters() misses them and the
optimizer never updates them), DL503 (an auxiliary head created in __init__ that forward never uses) and
DL504 ([block] * 3 repeats one LayerNorm-Linear block object three times).
"""
import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear = nn.Linear(width, width)

    def forward(self, x):
        return x + self.linear(self.norm(x))


class Encoder(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.embed = nn.Linear(6, width)
        self.residuals = [Block(width) for _ in range(2)]
        self.stack = nn.ModuleList([Block(width)] * 3)
        self.aux_head = nn.Linear(width, 2)
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        x = self.embed(x)
        for block in self.residuals:
            x = block(x)
        for block in self.stack:
            x = block(x)
        return self.head(x)


model = Encoder().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
data = torch.randn(48, 6, device=device)
target = data.sum(dim=1, keepdim=True)
for epoch in range(4):
    for start in range(0, 48, 12):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(data[start:start + 12]), target[start:start + 12])
        loss.backward()
        optimizer.step()
