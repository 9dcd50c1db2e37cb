"""Buggy, runtime-only: the frame pooler turns its (batch, frames, features) input time-major with view()
instead of transpose(), so every pooled vector mixes frames of different clips. The loss still falls:
nothing crashes, and no static rule sees it. The runtime replays one training forward in evaluation
mode and finds that clip 0's output depends on the other clips of the batch (RT301).
"""
import torch
import torch.nn as nn

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


model = FramePooler().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
for epoch in range(3):
    for start in range(0, 64, 16):
        optimizer.zero_grad()
        loss = criterion(model(clips[start:start + 16]), labels[start:start + 16])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
