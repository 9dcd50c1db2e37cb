"""Buggy and crashing: the loss is computed from argmax predictions, which carry no gradient, so
loss.backward() raises. The runtime ties the crash to DL402 (detached loss path) and shows the traceback.
"""
import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Linear(5, 4).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
inputs, labels = torch.randn(16, 5, device=device), torch.randint(0, 4, (16,), device=device)


def train_step(x, y):
    optimizer.zero_grad()
    predictions = model(x).argmax(dim=1).float()
    loss = ((predictions - y.float()) ** 2).mean()
    loss.backward()
    optimizer.step()
    return loss.item()


for epoch in range(3):
    print(train_step(inputs, labels))
