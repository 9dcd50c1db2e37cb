"""Clean near-miss: DL201, DL202, DL203, DL302, DL401, DL501, DL503, DL504 must not be confirmed.

Fine-tuning with frozen batch norm (the model in train mode, only its BatchNorm layers in eval), a
sequence-first LSTM with dropout, a siamese encoder shared by two branches (weight sharing on
purpose), tied embedding/decoder weights, log_softmax into NLLLoss, logits into BCEWithLogitsLoss, a
clamp with a bound that clips almost nothing, and an evaluation that restores train mode.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 8, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm1d(8)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x))).mean(dim=2)


class SiameseTagger(nn.Module):
    def __init__(self, vocabulary=50, width=8):
        super().__init__()
        self.backbone = Backbone()
        self.encoder = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.ReLU())
        self.embedding = nn.Embedding(vocabulary, width)
        self.lstm = nn.LSTM(width, width, num_layers=2, dropout=0.2)
        self.decoder = nn.Linear(width, vocabulary)
        self.decoder.weight = self.embedding.weight
        self.match = nn.Linear(8, 1)

    def forward(self, signal_a, signal_b, tokens):
        left = self.encoder(self.backbone(signal_a))
        right = self.encoder(self.backbone(signal_b))
        match_logit = self.match(left - right).squeeze(1)
        hidden, _ = self.lstm(self.embedding(tokens))  # tokens: (time, batch)
        return match_logit, self.decoder(hidden)


model = SiameseTagger().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
signal_a, signal_b = torch.randn(40, 6, 12, device=device), torch.randn(40, 6, 12, device=device)
same = torch.randint(0, 2, (40,), device=device).float()
tokens = torch.randint(0, 50, (7, 40), device=device)
for epoch in range(3):
    model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.eval()
    for start in range(0, 40, 10):
        batch = slice(start, start + 10)
        match_logit, token_logits = model(signal_a[batch], signal_b[batch], tokens[:, batch])
        match_loss = F.binary_cross_entropy_with_logits(match_logit, same[batch])
        log_probs = F.log_softmax(token_logits[:-1], dim=-1)
        token_loss = F.nll_loss(log_probs.reshape(-1, 50), tokens[1:, batch].reshape(-1))
        margin = torch.clamp(match_logit, min=-20.0, max=20.0).pow(2).mean()
        loss = match_loss + token_loss + 1e-3 * margin
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        match_logit, _ = model(signal_a, signal_b, tokens)
        accuracy = ((match_logit > 0).float() == same).float().mean().item()
    model.train()
    print(f"epoch {epoch}: accuracy {accuracy:.2f}")
