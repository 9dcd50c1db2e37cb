"""Hangs after starting two DataLoader workers, with SIGALRM ignored (so the child's own timer cannot stop
it): only the parent's kill of the whole process group ends it. Writes the worker process ids to argv[1]."""
import multiprocessing
import signal
import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

if __name__ == "__main__":
    loader = DataLoader(TensorDataset(torch.randn(64, 3)), batch_size=8, num_workers=2, persistent_workers=True)
    next(iter(loader))
    with open(sys.argv[1], "w") as handle:
        handle.write(" ".join(str(child.pid) for child in multiprocessing.active_children()))
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        time.sleep(0.5)
