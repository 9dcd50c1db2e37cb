"""Buggy (the default): the frame pooler turns its (batch, frames, features) input time-major with view()
instead of transpose(), so every pooled vector mixes frames of different clips. The loss still falls:
nothing crashes. The static rule DL508 sees the sizes listed in another order; the runtime compares the
view with the transposed input, and its replay of one training forward in evaluation mode finds that
clip 0's output depends on the other clips of the batch. `--layout one-feature`: the near-miss, clips of
one feature per frame, (batch, 1, frames) viewed as (batch, frames, 1): the same static finding, but
moving an axis of size 1 reorders no data, so the runtime does not reproduce it.
"""
import argparse

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["time-major", "one-feature"], default="time-major")
one_feature = parser.parse_args().layout == "one-feature"
torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
clips = torch.randn(64, 5, 6, device=device)
labels = (clips[:, :, 0].mean(dim=1) > 0).long()


class FramePooler(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 2)

    def forward(self, x):  # x: (batch, frames, features)
        batch, frames, features = x.shape
        time_major = x.view(frames, batch, features)  # should be x.transpose(0, 1)
        pooled = self.norm(torch.relu(self.proj(time_major))).mean(dim=0)
        return self.head(pooled)


class SignalTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(1, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, signal):  # signal: (batch, 1, frames), one feature per frame
        steps = signal.view(signal.size(0), signal.size(2), signal.size(1))
        return self.head(self.rnn(steps)[0][:, -1])


if one_feature:
    clips = clips[:, :, :1].transpose(1, 2).contiguous()
model = (SignalTagger() if one_feature else FramePooler()).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
for epoch in range(3):
    for start in range(0, 64, 16):
        optimizer.zero_grad()
        loss = criterion(model(clips[start:start + 16]), labels[start:start + 16])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
