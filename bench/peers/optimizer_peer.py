# The optimizers against torch.optim: replays a kernelscope run's batches and learning rates with torch.optim (SGD with
# momentum, dampening and Nesterov; Adam; AdamW) from the same θ_0 with the recorded per-step learning rates (any
# schedule), and compares θ_T. Not used by the tests.
#
#   /usr/bin/python3 bench/peers/optimizer_peer.py WORKDIR CASE [RUN]
#
# RUN: a run directory trained on CASE's data (default WORKDIR/CASE/run), so one case's inputs serve every rule.
# Prints one JSON line: the optimizer, the largest max |ours − torch| / max |ours| over the parameters, and "agrees"
# (that difference at most 1e-12). Logistic loss, one output (the cases bench/run trains).
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from functorch_peer import build_net, load_parameters, relative_difference  # noqa: E402


def make_optimizer(parameters, training):
    o = training["optimizer"]
    kind, lr, decay = o["kind"], training["learning_rate"], training["weight_decay"]
    if kind in ("sgd", "momentum", "nesterov"):
        momentum = 0.0 if kind == "sgd" else o["momentum"]
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, dampening=o["dampening"] if kind == "momentum" else 0.0,
                               nesterov=kind == "nesterov", weight_decay=decay)
    rule = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return rule(parameters, lr=lr, betas=(o["beta1"], o["beta2"]), eps=o["epsilon"], weight_decay=decay)


def main():
    if len(sys.argv) < 3:
        raise SystemExit("usage: optimizer_peer.py WORKDIR CASE [RUN]")
    directory = os.path.join(sys.argv[1], sys.argv[2])
    run = sys.argv[3] if len(sys.argv) > 3 else os.path.join(directory, "run")
    config = json.load(open(os.path.join(run, "config.json")))
    training = config["training"]
    if training.get("augment"):
        raise SystemExit("optimizer peer: augmentation is not replayed here")
    info = json.load(open(os.path.join(directory, "case.json")))
    pool = torch.from_numpy(np.load(os.path.join(directory, "inputs.npy")))
    inputs = pool[:info["train"]]
    signs = torch.from_numpy(np.load(os.path.join(directory, "train_labels.npy"))).double() * 2 - 1
    net = build_net(info["spec"], tuple(pool.shape[1:]))
    load_parameters(net, os.path.join(run, "theta0"))
    optimizer = make_optimizer(net.parameters(), training)
    trajectory = os.path.join(run, "trajectory")
    offsets = np.load(os.path.join(trajectory, "batch_offsets.npy"))
    positions = torch.from_numpy(np.load(os.path.join(trajectory, "batch_positions.npy")))
    rates = np.load(os.path.join(trajectory, "learning_rates.npy"))  # the schedule as recorded, step by step
    for s in range(len(offsets) - 1):
        for group in optimizer.param_groups:
            group["lr"] = float(rates[s])
        batch = positions[offsets[s]:offsets[s + 1]]
        margins = -signs[batch] * net(inputs[batch]).reshape(-1)
        loss = (torch.relu(margins) + torch.log1p(torch.exp(-margins.abs()))).mean()  # kernelscope's softplus, written out
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    difference = 0.0
    for name, parameter in net.named_parameters():
        ours = np.load(os.path.join(run, "thetaT", name + ".npy"))
        difference = max(difference, relative_difference(ours, parameter.detach().numpy()))
    print(json.dumps({"case": sys.argv[2], "spec": info["spec"], "task": "optimizer", "peer": "torch.optim", "optimizer": training["optimizer"]["kind"],
                      "steps": len(offsets) - 1, "max_rel_difference": difference, "agrees": difference <= 1e-12}))


if __name__ == "__main__":
    main()
