"""Yardstick: what a PyTorch user would run instead (the same CNN as vmap_ref.py).

  loop  one nn.Module trained peer after peer, its state reloaded for each (how most FL simulators,
        e.g. PFLlib or Flower's simulation, run clients)
  vmap  torch.func.functional_call + vmap over the stacked parameters of all peers, momentum SGD by hand

Momentum SGD, lr 0.05, momentum 0.9, random CIFAR-shaped inputs. One JSON line per (P, mode):
samples/s after one warm-up pass. Needs PyTorch (`pip install torch`; not a tallysim dependency).

    python benchmarks/torch_ref.py [--peers 10,100] [--steps 20] [--batch 32] [--bf16]
                                   [--device cuda|cpu] [--loop-max 100]

`--device` defaults to cuda when PyTorch sees a GPU, else cpu; `--bf16` uses autocast on that device.
"""
import argparse
import copy
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.f1, self.f2 = nn.Linear(64 * 4 * 4, 128), nn.Linear(128, 10)

    def forward(self, x):
        for conv in (self.c1, self.c2, self.c3):
            x = F.max_pool2d(F.relu(conv(x)), 2)
        return self.f2(F.relu(self.f1(x.flatten(1))))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch yardstick: per-peer loop and torch.func vmap")
    ap.add_argument("--peers", default="10,100", help="comma list of peer counts P")
    ap.add_argument("--steps", type=int, default=20, help="local steps per peer")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--loop-max", type=int, default=100, help="largest P also timed as a per-peer loop")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    dev = a.device
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    torch.backends.cudnn.benchmark = True
    autocast = lambda: torch.autocast(torch.device(dev).type, dtype=torch.bfloat16, enabled=a.bf16)  # noqa: E731
    rows = []
    for P in (int(s) for s in a.peers.split(",")):
        xs = torch.randn(P, a.steps, a.batch, 3, 32, 32, device=dev)
        ys = torch.randint(0, 10, (P, a.steps, a.batch), device=dev)
        models = [CNN().to(dev) for _ in range(min(P, 8))]
        samples = P * a.steps * a.batch
        if P <= a.loop_max:
            net = CNN().to(dev)
            states = [copy.deepcopy(models[i % len(models)].state_dict()) for i in range(P)]

            def run_loop():
                for i in range(P):
                    net.load_state_dict(states[i])
                    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
                    for s in range(a.steps):
                        with autocast():
                            loss = F.cross_entropy(net(xs[i, s]), ys[i, s])
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                    states[i] = net.state_dict()
                sync()
            run_loop()                                         # warm-up
            t0 = time.perf_counter()
            run_loop()
            sec = time.perf_counter() - t0
            rows.append(dict(lib="torch", mode="loop", bf16=a.bf16, device=dev, P=P, sec=sec,
                             samples_per_s=samples / sec))
            print(json.dumps(rows[-1]), flush=True)

        base = CNN().to(dev)
        params, buffers = stack_module_state([models[i % len(models)] for i in range(P)])
        params = {k: v.detach().clone() for k, v in params.items()}
        momentum = {k: torch.zeros_like(v) for k, v in params.items()}

        def loss_fn(p, b, x, y):
            with autocast():
                return F.cross_entropy(functional_call(base, (p, b), (x,)), y)
        grads_of = vmap(grad(loss_fn), in_dims=(0, 0, 0, 0))

        def run_vmap():
            for s in range(a.steps):
                g = grads_of(params, buffers, xs[:, s], ys[:, s])
                with torch.no_grad():
                    for k in params:
                        momentum[k].mul_(0.9).add_(g[k])
                        params[k].sub_(0.05 * momentum[k])
            sync()
        run_vmap()                                             # warm-up
        t0 = time.perf_counter()
        run_vmap()
        sec = time.perf_counter() - t0
        rows.append(dict(lib="torch", mode="vmap", bf16=a.bf16, device=dev, P=P, sec=sec,
                         samples_per_s=samples / sec))
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
