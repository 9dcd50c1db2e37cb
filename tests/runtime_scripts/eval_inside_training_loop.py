"""Buggy: DL302 (model.eval() for a validation check inside the training loop, never followed by
model.train()), DL504 (one BatchNorm1d object applied at two depths of the network) and DL104 (the
running total keeps every step's loss tensor and its graph).
"""
import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
inputs = torch.randn(160, 12, device=device)
targets = inputs[:, :1] * 2.0 + 0.1 * torch.randn(160, 1, device=device)
val_inputs, val_targets = torch.randn(32, 12, device=device), torch.randn(32, 1, device=device)


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(12, 16)
        self.second = nn.Linear(16, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        x = torch.relu(self.norm(self.first(x)))
        x = torch.relu(self.norm(self.second(x)))
        return self.out(self.drop(x))


model = Regressor().to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
criterion = nn.MSELoss()
running_loss = 0.0
model.train()
for step, start in enumerate(range(0, 160, 8)):
    x, y = inputs[start:start + 8], targets[start:start + 8]
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    running_loss += loss
    if step % 5 == 4:
        model.eval()
        with torch.no_grad():
            val_loss = criterion(model(val_inputs), val_targets).item()
        print(f"step {step}: train {running_loss.item() / (step + 1):.3f} val {val_loss:.3f}")
