# PyTorch peer for bench/run: functorch's vmap(jacrev) per-sample Jacobians and Jacobian-contraction NTK, and a plain
# PyTorch training epoch, on the same nets, θ_0, inputs, batches and threads as bench_compare. Not used by the tests.
#
#   /usr/bin/python3 bench/peers/functorch_peer.py WORKDIR CASE TASK [REPEATS]   TASK epoch | jacobian | gram:N
#
# Results are checked against kernelscope's before a time is reported: max |ours - theirs| / max |ours| <= 1e-10.
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from functorch import jacrev, make_functional, vmap

# Chunk of samples per vmap call: the per-sample gradients of a chunk must fit in memory (mlp:512-512: 5 MB a sample).
CHUNK = 100


def build_net(spec, sample):
    family, body = spec.split(":")
    layers = []
    if family == "mlp":
        widths, _, activation = body.partition("/")
        if activation not in ("", "tanh"):
            raise SystemExit(f"functorch peer: unsupported activation {activation} in {spec}")
        layers.append(torch.nn.Flatten())
        features = int(np.prod(sample))
        for token in widths.split("-"):
            width = int(token)
            layers += [torch.nn.Linear(features, width), torch.nn.Tanh() if activation == "tanh" else torch.nn.ReLU()]
            features = width
        layers.append(torch.nn.Linear(features, 1))
    elif family == "vgg":
        w = int(body)
        channels, height, width = sample
        for out in (w, w, "M", 2 * w, 2 * w, "M"):
            if out == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
                height, width = height // 2, width // 2
                continue
            layers += [torch.nn.Conv2d(channels, out, 3, padding=1), torch.nn.ReLU()]
            channels = out
        layers += [torch.nn.Flatten(), torch.nn.Linear(channels * height * width, 1)]
    elif family == "resnet9":
        return resnet9(int(body), sample[0]).double()
    else:
        raise SystemExit(f"functorch peer: unsupported spec {spec}")
    return torch.nn.Sequential(*layers).double()


class SumWired(torch.nn.Sequential):
    """kernelscope's network as PyTorch runs it: layer i reads the sum of the listed earlier outputs (-1: the input),
    in the order listed; state_dict names are nn.Sequential's ("<index>.weight")."""

    def __init__(self, layers, sources):
        super().__init__(*layers)
        self.sources = sources

    def forward(self, x):
        values = [x]
        for layer, reads in zip(self, self.sources):
            total = values[reads[0] + 1]
            for source in reads[1:]:
                total = total + values[source + 1]
            values.append(layer(total))
        return values[-1]


def resnet9(w, channels, outputs=1):
    """resnet9:W: the fast CIFAR-10 ResNet's layout without BatchNorm (README, "Residual nets")."""
    layers, sources = [], []

    def add(layer, reads=None):
        sources.append(reads if reads is not None else [len(layers) - 1])
        layers.append(layer)

    def conv(c_in, c_out):
        add(torch.nn.Conv2d(c_in, c_out, 3, padding=1))
        add(torch.nn.ReLU())

    def residual(c):  # x + relu(conv(relu(conv(x))))
        block_input = len(layers) - 1
        conv(c, c)
        conv(c, c)
        add(torch.nn.Identity(), [len(layers) - 1, block_input])

    conv(channels, w)
    conv(w, 2 * w)
    add(torch.nn.MaxPool2d(2))
    residual(2 * w)
    conv(2 * w, 4 * w)
    add(torch.nn.MaxPool2d(2))
    conv(4 * w, 8 * w)
    add(torch.nn.MaxPool2d(2))
    residual(8 * w)
    add(torch.nn.AdaptiveAvgPool2d(1))
    add(torch.nn.Flatten())
    add(torch.nn.Linear(8 * w, outputs))
    return SumWired(layers, sources)


def load_parameters(net, directory):
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            value = torch.from_numpy(np.load(os.path.join(directory, name + ".npy")))
            if value.shape != parameter.shape:
                raise SystemExit(f"functorch peer: {name}.npy has shape {tuple(value.shape)}, the net wants {tuple(parameter.shape)}")
            parameter.copy_(value)


def relative_difference(ours, theirs):
    return float(np.abs(theirs - ours).max() / np.abs(ours).max())


def time_runs(repeats, work):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return seconds[len(seconds) // 2], seconds[0], seconds[-1]


def jacobian_rows(fnet, params, inputs):
    """(N, P): functorch's per-sample Jacobian, vmap over samples of jacrev of the one-sample output."""

    def single(p, x):
        return fnet(p, x.unsqueeze(0)).squeeze(0)

    rows = []
    for first in range(0, inputs.shape[0], CHUNK):
        blocks = vmap(jacrev(single), (None, 0))(params, inputs[first:first + CHUNK])
        rows.append(torch.cat([b.reshape(b.shape[0], -1) for b in blocks], dim=1))
    return torch.cat(rows, dim=0)


def main():
    if len(sys.argv) < 4:
        raise SystemExit("usage: functorch_peer.py WORKDIR CASE TASK [REPEATS]")
    directory = os.path.join(sys.argv[1], sys.argv[2])
    task = sys.argv[3]
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    if task not in ("epoch", "jacobian") and not task.startswith("gram:"):
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    info = json.load(open(os.path.join(directory, "case.json")))
    pool = torch.from_numpy(np.load(os.path.join(directory, "inputs.npy")))
    net = build_net(info["spec"], tuple(pool.shape[1:]))
    theta0 = os.path.join(directory, "run", "theta0")
    load_parameters(net, theta0)
    result = {"case": sys.argv[2], "task": task, "peer": "functorch" if task != "epoch" else "pytorch", "threads": torch.get_num_threads()}

    if task == "epoch":
        train = info["train"]
        inputs = pool[:train]
        signs = torch.from_numpy(np.load(os.path.join(directory, "train_labels.npy"))).double() * 2 - 1
        trajectory = os.path.join(directory, "run", "trajectory")
        offsets = np.load(os.path.join(trajectory, "batch_offsets.npy"))
        positions = torch.from_numpy(np.load(os.path.join(trajectory, "batch_positions.npy")))
        rates = np.load(os.path.join(trajectory, "learning_rates.npy"))

        def epoch():
            load_parameters(net, theta0)
            for s in range(len(offsets) - 1):
                batch = positions[offsets[s]:offsets[s + 1]]
                margins = -signs[batch] * net(inputs[batch]).reshape(-1)
                # softplus written out: torch's switches to the identity above 20, kernelscope's does not
                loss = (torch.relu(margins) + torch.log1p(torch.exp(-margins.abs()))).mean()
                net.zero_grad()
                loss.backward()
                with torch.no_grad():
                    for p in net.parameters():
                        p.sub_(p.grad, alpha=float(rates[s]))

        timing = time_runs(repeats, epoch)
        difference = 0.0
        for name, parameter in net.named_parameters():
            ours = np.load(os.path.join(directory, "run", "thetaT", name + ".npy"))
            difference = max(difference, relative_difference(ours, parameter.detach().numpy()))
    else:
        fnet, params = make_functional(net)
        params = tuple(p.detach() for p in params)
        if task == "jacobian":
            inputs = pool[:256]
            holder = {}
            timing = time_runs(repeats, lambda: holder.update(j=jacobian_rows(fnet, params, inputs)))
            ours = np.load(os.path.join(directory, "jacobian_check.npy"))
            difference = relative_difference(ours, holder["j"][:8].numpy())
            result["n"] = 256
        else:
            count = int(task.split(":")[1])
            inputs = pool[:count]
            holder = {}

            def gram():
                jacobian = jacobian_rows(fnet, params, inputs)
                holder["k"] = jacobian @ jacobian.T

            timing = time_runs(repeats, gram)
            ours = np.load(os.path.join(directory, f"gram_{count}.npy"))
            difference = relative_difference(ours, holder["k"].numpy())
            result["n"] = count

    result.update(max_rel_difference=difference, mismatch=not difference <= 1e-10, median=timing[0], min=timing[1], max=timing[2],
                  repeats=repeats, peak_memory_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
