"""Reaches for the network (a dataset download): dllint confirm must fail fast and name this line."""
import urllib.request

import torch

model = torch.nn.Linear(4, 1)
with urllib.request.urlopen("http://example.com/train.csv", timeout=30) as response:
    rows = response.read()
