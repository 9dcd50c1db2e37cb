"""Fine-tuning a pretrained classifier on new classes. Buggy (the default): the classification head is
replaced after the optimizer was built, so the optimizer updates the old head and the new one never
trains (DL109). `--layout frozen`: the clean near-miss, a frozen backbone and an optimizer over the new
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


def replace_head():
    """The "pretrained" model with a head for the 5 new classes, and its optimizer."""
    model = SmallNet(classes=1000)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.fc = nn.Linear(16, 5)
    return model, optimizer


def replace_head_of_frozen_backbone():
    model = SmallNet(classes=1000)
    model.features.requires_grad_(False)
    model.fc = nn.Linear(16, 5)
    return model, torch.optim.SGD(model.fc.parameters(), lr=0.01, momentum=0.9)


def replace_head_optimize_head_only():
    model = SmallNet(classes=1000)
    model.fc = nn.Linear(16, 5)
    return model, torch.optim.SGD(model.fc.parameters(), lr=0.01, momentum=0.9)


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["replaced", "frozen", "head-only"], default="replaced")
torch.manual_seed(0)
layouts = {"replaced": replace_head, "frozen": replace_head_of_frozen_backbone,
           "head-only": replace_head_optimize_head_only}
model, optimizer = layouts[parser.parse_args().layout]()
images, labels = torch.randn(64, 3, 8, 8), torch.randint(0, 5, (64,))
for epoch in range(3):
    for start in range(0, 64, 16):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images[start:start + 16]), labels[start:start + 16])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
