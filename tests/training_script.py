"""A realistic training script for the command-line tests: a model, a training loop, an evaluation pass
and a `main()` run under `if __name__ == "__main__":`. Findings, by line:

- 17 DL303 (F.dropout without training=): safe fix
- 27 DL201 (softmax into cross-entropy; the call spans lines 27-28): unsafe fix
- 30 DL101 (no zero_grad in the loop): unsafe fix
- 38 DL505 (model.forward called directly, skipping the hook main() registers): safe fix
"""

TRAIN_SCRIPT = '''\
"""Trains a small CNN on CIFAR-10 batches: a model, a training loop, an evaluation pass, a main."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.head = nn.Linear(16 * 32 * 32, classes)

    def forward(self, images):
        features = F.relu(self.conv(images))
        features = F.dropout(features, 0.25)
        return self.head(features.flatten(1))


def train_epoch(model, loader, optimizer, device):
    criterion = nn.CrossEntropyLoss()
    model.train()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss = criterion(F.softmax(logits, dim=1),
                         labels)
        loss.backward()
        optimizer.step()


def evaluate(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model.forward(images).argmax(1) == labels).sum().item()
    return correct


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    model = SmallCNN()
    model.register_forward_hook(lambda module, inputs, output: print("logits std", output.std().item()))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = torch.utils.data.DataLoader(torch.load("cifar_batches.pt"), batch_size=64, shuffle=True)
    for _ in range(args.epochs):
        train_epoch(model, loader, optimizer, "cpu")
        print(evaluate(model, loader))


if __name__ == "__main__":
    main()
'''

# (line, code) of every finding in TRAIN_SCRIPT.
TRAIN_SCRIPT_FINDINGS = [(17, "DL303"), (27, "DL201"), (30, "DL101"), (38, "DL505")]
