"""Buggy: DL102 (zero_grad between backward and step) and DL203 (softmax probabilities into NLLLoss).

Runs like a real command-line script: argparse, a DataLoader with two worker processes, a main()
behind `if __name__ == "__main__"`, and sys.exit(main()).
"""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class NoisyBlobs(Dataset):
    def __init__(self, size, features, classes):
        generator = torch.Generator().manual_seed(1)
        self.labels = torch.randint(0, classes, (size,), generator=generator)
        self.points = torch.randn(size, features, generator=generator) + self.labels[:, None].float()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.points[index], self.labels[index]


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args()


def main():
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loader = DataLoader(NoisyBlobs(96, 6, 3), batch_size=16, shuffle=True, num_workers=args.workers)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        for points, labels in loader:
            points, labels = points.to(device), labels.to(device)
            probabilities = F.softmax(model(points), dim=1)
            loss = F.nll_loss(probabilities, labels)
            loss.backward()
            optimizer.zero_grad()
            optimizer.step()
        print(f"epoch {epoch} loss {loss.item():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
