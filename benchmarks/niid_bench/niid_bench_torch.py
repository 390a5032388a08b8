"""docs/niid-bench.md. NIID-Bench's FedAvg/FedProx on FMNIST #C=1 (experiments.py, model.py SimpleCNNMNIST), written out in
PyTorch with ablation knobs for the choices where tallysim differs.

Faithful to NIID-Bench (defaults): SimpleCNNMNIST (conv 5x5 VALID 6, pool, conv 5x5 VALID 16, pool,
256 -> 120 -> 84 -> 10), PyTorch default init, ToTensor inputs in [0, 1], SGD(lr, momentum=rho,
weight_decay=reg=1e-5) created afresh per round (momentum reset), CrossEntropyLoss mean, DataLoader
shuffle=True drop_last=False batch 64, 10 local epochs, FedAvg weighted by sample counts, FedProx
(mu/2)||w - w_g||^2 added to every batch's loss, global model evaluated on the whole test set.
Switches put in tallysim's choices: --arch same --init flax --inputs pm1 --reg 0.
--max_per_peer N keeps the first N examples of each class (the reduced size of the page).
Prints one JSON row per round: acc_global, pred_hist (test predictions per class), last_loss, sec.
Needs PyTorch and numpy only (not torchvision).
"""
import argparse, gzip, json, math, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


class Net(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2 if arch == "same" else 0)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        feat = 16 * 5 * 5 if arch == "same" else 16 * 4 * 4
        self.fc1 = nn.Linear(feat, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def flax_init(net, gen):
    """flax.linen defaults: kernel lecun_normal (truncated normal, std sqrt(1/fan_in)/.8796, cut at 2
    std), bias zeros."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
            with torch.no_grad():
                w = torch.empty_like(m.weight)
                nn.init.trunc_normal_(w, 0.0, 1.0, -2.0, 2.0, generator=gen)
                m.weight.copy_(w * std)
                m.bias.zero_()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--rho", type=float, default=0.9)
    ap.add_argument("--reg", type=float, default=1e-5)
    ap.add_argument("--mu", type=float, default=0.0)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--inputs", default="01", choices=["01", "pm1"])
    ap.add_argument("--init", default="torch", choices=["torch", "flax"])
    ap.add_argument("--arch", default="valid", choices=["valid", "same"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max_per_peer", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist/",
                    help="directory with the four gzipped Fashion-MNIST IDX files")
    a = ap.parse_args()
    np.random.seed(a.seed); torch.manual_seed(a.seed)
    D = a.data.rstrip("/") + "/"
    xtr, ytr = idx(D + "train-images-idx3-ubyte.gz"), idx(D + "train-labels-idx1-ubyte.gz")
    xte, yte = idx(D + "t10k-images-idx3-ubyte.gz"), idx(D + "t10k-labels-idx1-ubyte.gz")
    conv = (lambda x: torch.tensor(x, dtype=torch.float32)[:, None] / 255.0) if a.inputs == "01" else \
           (lambda x: torch.tensor(x, dtype=torch.float32)[:, None] * (2 / 255.0) - 1.0)
    Xtr, Ytr, Xte, Yte = conv(xtr), torch.tensor(ytr.astype(np.int64)), conv(xte), torch.tensor(yte.astype(np.int64))
    # NIID-Bench noniid-#label1 with 10 parties: party i holds every example of class i.
    parts = [np.where(ytr == i)[0] for i in range(10)]
    if a.max_per_peer:
        parts = [p[:a.max_per_peer] for p in parts]
    glob = Net(a.arch)
    if a.init == "flax":
        flax_init(glob, torch.Generator().manual_seed(a.seed))
    n = np.array([len(p) for p in parts], float)
    freqs = n / n.sum()
    rows = []

    def evaluate(net):
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(Xte[i:i + 1000]).argmax(1) for i in range(0, len(Xte), 1000)])
        net.train()
        return float((pred == Yte).float().mean()), np.bincount(pred.numpy(), minlength=10).tolist()

    for r in range(a.rounds):
        t0 = time.time()
        gstate = {k: v.clone() for k, v in glob.state_dict().items()}
        gparams = [p.detach().clone() for p in glob.parameters()]
        new = None
        losses = []
        for i, p in enumerate(parts):
            net = Net(a.arch); net.load_state_dict(gstate)
            opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.rho, weight_decay=a.reg)
            X, Y = Xtr[p], Ytr[p]
            for e in range(a.epochs):
                perm = torch.randperm(len(p))
                for s in range(0, len(p), a.bs):
                    b = perm[s:s + a.bs]
                    opt.zero_grad()
                    loss = F.cross_entropy(net(X[b]), Y[b])
                    if a.mu:
                        loss = loss + sum((a.mu / 2) * torch.norm(q - g) ** 2 for q, g in zip(net.parameters(), gparams))
                    loss.backward(); opt.step()
                losses.append(loss.item())
            sd = net.state_dict()
            if new is None:
                new = {k: v * freqs[i] for k, v in sd.items()}
            else:
                for k in new:
                    new[k] += sd[k] * freqs[i]
        glob.load_state_dict(new)
        acc, hist = evaluate(glob)
        row = {"round": r + 1, "acc_global": acc, "pred_hist": hist, "last_loss": float(np.mean(losses)),
               "sec": round(time.time() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.out:
        with open(a.out, "w") as f:       # closed (flushed) here, not whenever the interpreter collects it
            json.dump({"args": vars(a), "rows": rows}, f)


if __name__ == "__main__":
    main()
