"""Clean near-miss: DL101, DL102, DL104, DL301, DL302, DL401 must not be confirmed.

Gradient accumulation (step every second batch), gradients cleared with `p.grad = None` for the
projection optimizer, a GradScaler with clipping, an EMA teacher run in train mode under no_grad (its
parameters are in no optimizer), pseudo-labels from the student under no_grad in train mode, a clamp
that never clips, losses logged with .item(), and an evaluation with eval()/no_grad/train().
"""
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
inputs, labels = torch.randn(96, 10, device=device), torch.randint(0, 4, (96,), device=device)
student = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 4)).to(device)
teacher = copy.deepcopy(student)
for parameter in teacher.parameters():
    parameter.requires_grad_(False)
projection = nn.Linear(4, 4).to(device)
optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
projection_optimizer = torch.optim.Adam(projection.parameters(), lr=1e-3)
scaler = torch.amp.GradScaler(device.type)
accumulation = 2
history = []
running = 0.0


def evaluate():
    student.eval()
    with torch.no_grad():
        accuracy = (student(inputs).argmax(1) == labels).float().mean().item()
    student.train()
    return accuracy


for epoch in range(2):
    student.train()
    teacher.train()
    for index, start in enumerate(range(0, 96, 8)):
        x, y = inputs[start:start + 8], labels[start:start + 8]
        with torch.no_grad():
            soft_targets = F.softmax(teacher(x), dim=1)
            pseudo_labels = student(x).argmax(dim=1)
        logits = student(x)
        loss = F.cross_entropy(logits, y) + 0.1 * F.kl_div(F.log_softmax(logits, 1), soft_targets,
                                                           reduction="batchmean")
        loss = loss + 0.1 * F.nll_loss(F.log_softmax(logits, dim=1), pseudo_labels)
        loss = torch.clamp(loss, max=1e4)
        scaler.scale(loss / accumulation).backward()
        projected = projection(logits.detach())
        projection_loss = F.mse_loss(projected, torch.zeros_like(projected))
        projection_loss.backward()
        projection_optimizer.step()
        for parameter in projection.parameters():
            parameter.grad = None
        if index % accumulation == accumulation - 1:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                for teacher_weight, student_weight in zip(teacher.parameters(), student.parameters()):
                    teacher_weight.mul_(0.99).add_(0.01 * student_weight)
        history.append(loss.item())
        running += loss.item()
    print(f"epoch {epoch}: mean loss {running / len(history):.3f}, accuracy {evaluate():.2f}")
