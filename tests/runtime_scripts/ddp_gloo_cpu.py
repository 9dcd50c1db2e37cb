"""Clean: distributed data-parallel training without Lightning, on the CPU with the gloo backend.

`python ddp_gloo_cpu.py` starts WORLD_SIZE processes with torch.multiprocessing.spawn; each joins the
process group over localhost, wraps its model in DistributedDataParallel, reads its shard through a
DistributedSampler, and after training all-reduces its validation loss; rank 0 prints it and saves a
checkpoint. Under dllint confirm the same script runs as a world of one process (rank 0, in process).
"""
import os
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

WORLD_SIZE = 2


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker(rank, world_size, port, checkpoint):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(0)
    features = torch.randn(256, 10)
    labels = (features[:, :3].sum(dim=1) > 0).long()
    train_set, valid_set = TensorDataset(features[:192], labels[:192]), TensorDataset(features[192:], labels[192:])
    sampler = DistributedSampler(train_set, shuffle=True)
    loader = DataLoader(train_set, batch_size=16, sampler=sampler)
    valid_loader = DataLoader(valid_set, batch_size=32, sampler=DistributedSampler(valid_set, shuffle=False))
    model = DistributedDataParallel(nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 2)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(3):
        sampler.set_epoch(epoch)
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
    model.eval()
    total = torch.zeros(2)
    with torch.no_grad():
        for x, y in valid_loader:
            total += torch.tensor([criterion(model(x), y).item() * len(y), len(y)])
    dist.all_reduce(total)
    if rank == 0:
        print(f"validation loss {total[0] / total[1]:.3f} over {int(total[1])} samples")
        torch.save(model.module.state_dict(), checkpoint)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(worker, args=(WORLD_SIZE, free_port(), os.path.join(folder, "model.pt")), nprocs=WORLD_SIZE)
