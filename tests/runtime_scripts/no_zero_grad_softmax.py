"""Buggy: DL101 (gradients never cleared) and DL201 (softmax into CrossEntropyLoss)."""
import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
inputs = torch.randn(64, 8, device=device)
labels = torch.randint(0, 4, (64,), device=device)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.CrossEntropyLoss()

for epoch in range(10):
    for start in range(0, 64, 16):
        x, y = inputs[start:start + 16], labels[start:start + 16]
        loss = criterion(torch.softmax(model(x), dim=1), y)
        loss.backward()
        optimizer.step()
