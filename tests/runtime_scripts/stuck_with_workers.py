"""Hangs after starting two DataLoader workers, with SIGALRM ignored (so the child's own timer cannot stop
it): only the parent's kill ends it. Also starts a server in a new session and a daemon double-forked
with setsid, which a kill of the process group does not reach. Writes the process ids to argv[1]: the
workers on the first line, the escaped processes on the second."""
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset


def start_daemon():
    """The classic double fork: the daemon's parent exits, so it is nobody's child but init's."""
    reader, writer = os.pipe()
    if os.fork() == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            while True:
                time.sleep(0.5)
        os.write(writer, str(pid).encode())
        os._exit(0)
    os.close(writer)
    daemon = int(os.read(reader, 32))
    os.close(reader)
    return daemon


if __name__ == "__main__":
    loader = DataLoader(TensorDataset(torch.randn(64, 3)), batch_size=8, num_workers=2, persistent_workers=True)
    next(iter(loader))
    workers = [child.pid for child in multiprocessing.active_children()]
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    escaped = [server.pid, start_daemon()]
    with open(sys.argv[1], "w") as handle:
        handle.write(" ".join(map(str, workers)) + "\n" + " ".join(map(str, escaped)))
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        time.sleep(0.5)
