import torch.nn.functional as F


def train_epoch(model, optimizer, batches):
    total = 0.0
    for user, item, rating in batches:
        loss = F.mse_loss(model(user, item), rating)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(batches)
