"""The optimizer is rebuilt at every iteration, for a hand-written learning-rate schedule (which also resets
AdamW's state): the step budget must still hold.

A character-level language model trained with a plain iteration loop and no DataLoader, as nanoGPT-style
scripts do; after the loop the model is evaluated and a sample is generated. `--layout function` runs
the loop as the last statement of a function (no statement after it to leave the loop to).
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
text = "the quick brown fox jumps over the lazy dog " * 40
vocabulary = sorted(set(text))
data = torch.tensor([vocabulary.index(c) for c in text])
context, batch_size, max_iterations, base_lr = 16, 24, 5000, 3e-3


class CharModel(nn.Module):
    def __init__(self, size, width=48):
        super().__init__()
        self.embed = nn.Embedding(size, width)
        self.mix = nn.GRU(width, width, batch_first=True)
        self.head = nn.Linear(width, size)

    def forward(self, tokens):
        hidden, _ = self.mix(self.embed(tokens))
        return self.head(hidden)


def get_batch():
    starts = torch.randint(0, len(data) - context - 1, (batch_size,))
    inputs = torch.stack([data[s:s + context] for s in starts])
    targets = torch.stack([data[s + 1:s + context + 1] for s in starts])
    return inputs, targets


def train_step(model, iteration):
    lr = base_lr * min(1.0, (iteration + 1) / 100) * 0.5 * (1 + math.cos(math.pi * iteration / max_iterations))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    inputs, targets = get_batch()
    logits = model(inputs)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def train(model):
    for iteration in range(max_iterations):
        train_step(model, iteration)


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["flat", "function"], default="flat")
layout = parser.parse_args().layout
model = CharModel(len(vocabulary))
if layout == "function":
    train(model)
else:
    for iteration in range(max_iterations):
        loss = train_step(model, iteration)
        if iteration % 500 == 0:
            print(f"iteration {iteration}: loss {loss.item():.3f}")

model.eval()
with torch.no_grad():
    inputs, targets = get_batch()
    logits = model(inputs)
    final = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1)).item()
    token = data[:1].view(1, 1)
    generated = [token.item()]
    for _ in range(20):
        token = model(token)[:, -1].argmax(dim=-1, keepdim=True)
        generated.append(token.item())
print(f"evaluation loss {final:.3f}; sample {''.join(vocabulary[i] for i in generated)!r}")
