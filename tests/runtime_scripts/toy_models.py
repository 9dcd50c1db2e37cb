"""Models for the model-only checks (`dllint confirm --model` and check_model)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallClassifier(nn.Module):
    """Clean: overfits a batch, uses its input, keeps samples independent, deterministic in eval."""

    def __init__(self, features=12, classes=5):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, classes))

    def forward(self, x):
        return self.body(x)


class BatchMixer(nn.Module):
    """Buggy: view() instead of transpose() scrambles the samples of the batch; F.dropout stays on in eval;
    a submodule that forward never uses."""

    def __init__(self, channels=4, classes=3):
        super().__init__()
        self.proj = nn.Linear(channels, 8)
        self.head = nn.Linear(8, classes)
        self.unused = nn.Linear(3, 3)

    def forward(self, x):  # x: (batch, length, channels)
        batch, length, channels = x.shape
        time_major = x.view(length, batch, channels)  # should be x.transpose(0, 1)
        hidden = F.dropout(torch.relu(self.proj(time_major)), p=0.3)
        return self.head(hidden.mean(dim=0))


def small_classifier():
    torch.manual_seed(0)
    return SmallClassifier()


def batch_mixer():
    torch.manual_seed(0)
    return BatchMixer()
