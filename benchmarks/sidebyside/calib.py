"""Thread calibration: time a plain 500-step cross-entropy SGD loop (MLP 64-100-100-10, batch 128).

Shows how this machine's torch speed depends on the thread count, with nothing of either
implementation involved; run it with each side's python to compare the two torch builds:
    .venv/bin/python benchmarks/sidebyside/calib.py 2          # argument: torch threads
    "$REF_VENV/bin/python" benchmarks/sidebyside/calib.py 2
"""

import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Linear(64, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)
)
X = torch.randn(1077, 64)
y = torch.randint(10, (1077,))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
for _ in range(3):
    t = time.perf_counter()
    for _ in range(500):
        idx = torch.randint(1077, (128,))
        loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"threads {torch.get_num_threads()}: 500-step CE SGD loop {time.perf_counter() - t:.3f} s", flush=True)
