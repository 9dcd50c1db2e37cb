"""A digit-style classifier and a two-tower retrieval model on synthetic data.

Buggy (the default): the classifier returns log_softmax over dim 0, the batch, and NLLLoss trains the
samples of each batch to compete for every class; its evaluation, from the logits, makes the same
mistake with softmax before argmax(dim=1) (DL208 twice). `--layout contrastive`: the clean near-miss,
a CLIP-style symmetric loss whose column direction takes log_softmax over dim 0 of the (queries, items)
similarity matrix and transposes it before nll_loss, which is correct.
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(20, 32), nn.ReLU())
        self.out = nn.Linear(32, 5)

    def forward(self, x):
        return F.log_softmax(self.out(self.hidden(x)), dim=0)


class TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(20, 16)
        self.item = nn.Linear(12, 16)

    def forward(self, queries, items):
        return F.normalize(self.query(queries), dim=1) @ F.normalize(self.item(items), dim=1).t() / 0.1


def train_classifier(features, labels):
    model = Classifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.NLLLoss()
    loader = DataLoader(TensorDataset(features, labels), batch_size=16, shuffle=True)
    for epoch in range(4):
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
    print(f"accuracy {evaluate(model, features, labels):.2f}")


def evaluate(model, features, labels):
    model.eval()
    with torch.no_grad():
        scores = model.out(model.hidden(features))
        probabilities = F.softmax(scores, dim=0)
        predicted = probabilities.argmax(dim=1)
    return (predicted == labels).float().mean().item()


def train_retrieval(features, items):
    model = TwoTowers()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(features, items), batch_size=16, shuffle=True)
    for epoch in range(4):
        for queries, matching in loader:
            similarity = model(queries, matching)
            targets = torch.arange(similarity.size(0))
            per_query = F.cross_entropy(similarity, targets)
            per_item = F.nll_loss(F.log_softmax(similarity, dim=0).t(), targets)
            loss = (per_query + per_item) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["classifier", "contrastive"], default="classifier")
torch.manual_seed(0)
features = torch.randn(128, 20)
if parser.parse_args().layout == "classifier":
    train_classifier(features, features[:, :5].argmax(dim=1))
else:
    train_retrieval(features, features[:, :12] + 0.1 * torch.randn(128, 12))
