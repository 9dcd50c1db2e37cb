"""Runtime-only bugs: the output layer starts 50x too large, so the loss at initialisation is far above
-log(1/10); from the third step on, a "log-scaling" layer takes the log of negative logits and the loss
turns NaN.
"""
import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LogScale(nn.Module):
    def forward(self, x):
        return torch.log(x)


classifier = nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 10)).to(device)
log_scale = LogScale()
with torch.no_grad():
    classifier[2].weight.mul_(50.0)
optimizer = torch.optim.SGD(classifier.parameters(), lr=0.01)
criterion = nn.CrossEntropyLoss()
inputs, labels = torch.randn(96, 20, device=device), torch.randint(0, 10, (96,), device=device)
for step, start in enumerate(range(0, 96, 16)):
    optimizer.zero_grad()
    logits = classifier(inputs[start:start + 16])
    loss = criterion(logits, labels[start:start + 16])
    if step >= 2:
        loss = loss + criterion(log_scale(logits), labels[start:start + 16])
    loss.backward()
    optimizer.step()
