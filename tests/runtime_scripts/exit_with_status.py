"""Exits with status 3 after one forward pass (a failed sanity check): the run is reported as failed."""
import sys

import torch

model = torch.nn.Linear(4, 2)
output = model(torch.randn(3, 4))
print("sanity check failed: expected 3 classes, got", output.shape[1])
sys.exit(3)
