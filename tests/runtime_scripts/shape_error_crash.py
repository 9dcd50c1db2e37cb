"""Crashing, with nothing to confirm: after two good steps a batch with the wrong feature size arrives."""
import torch
import torch.nn as nn

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Linear(8, 2).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
batches = [torch.randn(4, 8, device=device), torch.randn(4, 8, device=device), torch.randn(4, 7, device=device)]


def loss_on(batch):
    return model(batch).pow(2).mean()


for batch in batches:
    optimizer.zero_grad()
    loss = loss_on(batch)
    loss.backward()
    optimizer.step()
print("never printed")
