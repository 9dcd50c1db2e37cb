"""Buggy: DL301 (the classifier is evaluated under no_grad but never put in eval mode, so dropout and batch
norm stay in training mode) and DL303 (the tagger calls F.dropout without training=self.training, so it
keeps dropping activations after tagger.eval()).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
train_set = TensorDataset(torch.randn(64, 8), torch.randint(0, 3, (64,)))
val_set = TensorDataset(torch.randn(32, 8), torch.randint(0, 3, (32,)))
train_loader = DataLoader(train_set, batch_size=16, shuffle=True)
val_loader = DataLoader(val_set, batch_size=16)


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(8, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        return self.out(F.dropout(torch.relu(self.hidden(x)), p=0.5))


classifier = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)).to(device)
tagger = Tagger().to(device)
optimizer = torch.optim.Adam(list(classifier.parameters()) + list(tagger.parameters()), lr=1e-3)
criterion = nn.CrossEntropyLoss()


def evaluate():
    tagger.eval()
    correct = 0
    with torch.no_grad():
        for x, y in val_loader:
            x, y = x.to(device), y.to(device)
            correct += (classifier(x).argmax(1) == y).sum().item()
            correct += (tagger(x).argmax(1) == y).sum().item()
    tagger.train()
    return correct / (2 * len(val_set))


for epoch in range(2):
    classifier.train()
    for x, y in train_loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(classifier(x), y) + criterion(tagger(x), y)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: accuracy {evaluate():.2f}")
