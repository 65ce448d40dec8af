"""One process of a DistributedDataParallel run (gloo over 127.0.0.1) of a model built on
rnnkit.torch.LSTM: it trains on its share of a fixed batch and saves the weights it ends with.

    python tests/torch_ddp_worker.py RANK WORLD_SIZE PORT OUT.pt

With WORLD_SIZE 1 it trains alone, without torch.distributed, on the whole batch: the weights every
process of a run ends with must equal those.
"""

import sys

import torch

import rnnkit
import rnnkit.torch as rt

STEPS, BATCH, TIMESTEPS, FEATURES, UNITS = 4, 8, 7, 3, 5


class Regressor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = rt.LSTM(FEATURES, UNITS, num_layers=2, batch_first=True, dtype=torch.float64)
        self.head = torch.nn.Linear(UNITS, 1, dtype=torch.float64)

    def forward(self, x):
        return self.head(self.lstm(x)[1][0][-1])


def main(rank: int, world: int, port: int, out: str) -> None:
    rnnkit.set_num_threads(1)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Regressor()
    x = torch.randn(BATCH, TIMESTEPS, FEATURES, dtype=torch.float64)
    y = torch.randn(BATCH, 1, dtype=torch.float64)
    share = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    if world > 1:
        torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                             world_size=world)
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(STEPS):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[share]), y[share]).backward()
        optimizer.step()
    module = model.module if world > 1 else model
    torch.save(module.state_dict(), out)
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
