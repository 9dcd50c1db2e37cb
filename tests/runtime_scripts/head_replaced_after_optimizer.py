"""Fine-tuning a pretrained classifier on new classes. Buggy (the default): the classification head is
replaced after the optimizer was built, so the optimizer updates the old head and the new one never
trains (RT103). `--layout frozen`: the clean near-miss, a frozen backbone and an optimizer over the new
head only, built after the replacement. `--layout head-only`: the backbone still requires gradients but
only the head is optimized (RT103 as info: the backbone's gradients are computed for nothing)."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, classes)

    def forward(self, images):
        return self.fc(self.features(images))


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["replaced", "frozen", "head-only"], default="replaced")
layout = parser.parse_args().layout
torch.manual_seed(0)
model = SmallNet(classes=1000)  # "pretrained" on the old task
if layout == "replaced":
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.fc = nn.Linear(16, 5)
elif layout == "frozen":
    model.features.requires_grad_(False)
    model.fc = nn.Linear(16, 5)
    optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.01, momentum=0.9)
else:
    model.fc = nn.Linear(16, 5)
    optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.01, momentum=0.9)

images, labels = torch.randn(64, 3, 8, 8), torch.randint(0, 5, (64,))
for epoch in range(3):
    for start in range(0, 64, 16):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images[start:start + 16]), labels[start:start + 16])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
