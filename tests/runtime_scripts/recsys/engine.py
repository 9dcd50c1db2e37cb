import torch.nn.functional as F
from torch.nn.utils import clip_grad_norm_


def train_epoch(model, optimizer, scaler, batches):
    """Mixed-precision style update with loss scaling and clipping, but the gradients are never cleared."""
    total = 0.0
    for user, item, rating in batches:
        loss = F.mse_loss(model(user, item), rating)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        clip_grad_norm_(model.parameters(), max_norm=5.0)
        scaler.step(optimizer)
        scaler.update()
        total += loss.item()
    return total / len(batches)
