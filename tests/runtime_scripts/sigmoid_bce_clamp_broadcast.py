"""Buggy: DL202 (sigmoid output into BCEWithLogitsLoss), DL401 (clamp(min=0) on a regression output that is
mostly negative, so most elements get no gradient) and a runtime-only bug: an MSE loss between a (N, 1)
prediction and a (N,) target, which broadcasts to (N, N).
"""
import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
features = torch.randn(128, 10, device=device)
flags = (features[:, 0] > 0).float().unsqueeze(1)
prices = features[:, 1].abs()


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(10, 32), nn.ReLU())
        self.flag_head = nn.Linear(32, 1)
        self.price_head = nn.Linear(32, 1)
        nn.init.constant_(self.price_head.bias, -2.0)

    def forward(self, x):
        hidden = self.trunk(x)
        return torch.sigmoid(self.flag_head(hidden)), self.price_head(hidden)


model = TwoHeads().to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
flag_loss = nn.BCEWithLogitsLoss()
for epoch in range(3):
    for start in range(0, 128, 32):
        x = features[start:start + 32]
        flag_probability, price = model(x)
        price = price.clamp(min=0)
        loss = flag_loss(flag_probability, flags[start:start + 32])
        loss = loss + nn.functional.mse_loss(price, prices[start:start + 32])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
