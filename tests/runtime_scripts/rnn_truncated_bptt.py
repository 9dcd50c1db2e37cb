"""Clean: a character-level LSTM language model trained with truncated backpropagation through time.

One long synthetic text is cut into batch_size parallel streams; each chunk of BPTT steps continues
from the previous chunk's hidden state, detached so that backward() stops at the chunk boundary (the
standard TBPTT loop). Gradients are clipped; every epoch ends with a validation pass in eval mode that
carries its own hidden state, then the perplexity is printed. Runs the same under python and confirm.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCABULARY, BPTT, STREAMS = 24, 16, 8


class CharLanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCABULARY, 32)
        self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True, dropout=0.1)
        self.out = nn.Linear(64, VOCABULARY)

    def forward(self, tokens, hidden=None):
        output, hidden = self.lstm(self.embed(tokens), hidden)
        return self.out(output), hidden


def streams(text, count):
    length = text.numel() // count
    return text[:length * count].view(count, length)


def detach(hidden):
    return tuple(h.detach() for h in hidden)


def run_epoch(model, data, optimizer=None):
    hidden, total, tokens = None, 0.0, 0
    for start in range(0, data.size(1) - 1, BPTT):
        inputs = data[:, start:start + BPTT]
        targets = data[:, start + 1:start + 1 + BPTT]
        inputs = inputs[:, :targets.size(1)]
        if hidden is not None:
            hidden = detach(hidden)
        logits, hidden = model(inputs, hidden)
        loss = F.cross_entropy(logits.reshape(-1, VOCABULARY), targets.reshape(-1))
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
        total += loss.item() * targets.numel()
        tokens += targets.numel()
    return total / tokens


def main():
    torch.manual_seed(0)
    pattern = torch.randint(0, VOCABULARY, (37,))
    text = pattern.repeat(60)
    train_data, valid_data = streams(text[:1800], STREAMS), streams(text[1800:], STREAMS)
    model = CharLanguageModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(3):
        model.train()
        train_loss = run_epoch(model, train_data, optimizer)
        model.eval()
        with torch.no_grad():
            valid_loss = run_epoch(model, valid_data)
        print(f"epoch {epoch}: train {train_loss:.3f}, valid perplexity {math.exp(valid_loss):.2f}")


if __name__ == "__main__":
    main()
