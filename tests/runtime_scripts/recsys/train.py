import argparse

import torch

from recsys.engine import train_epoch
from recsys.model import Scorer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    users, items = torch.randint(0, 20, (64,), device=device), torch.randint(0, 30, (64,), device=device)
    ratings = torch.rand(64, device=device) * 5
    batches = [(users[i:i + 16], items[i:i + 16], ratings[i:i + 16]) for i in range(0, 64, 16)]
    model = Scorer().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler(device.type, init_scale=1024.0)
    for epoch in range(args.epochs):
        print(epoch, train_epoch(model, optimizer, scaler, batches))


if __name__ == "__main__":
    main()
