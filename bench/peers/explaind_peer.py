# EPK peer for bench/run: the method of ExPLAIND (mainlp/explaind) in PyTorch/functorch, written here from its
# description, not its code: per SGD step, the test-side gradient averaged by a midpoint rule with n points on
# θ_s + t·Δθ_s, the training side at θ_s, K_s = ⟨mean gradient, ∇f(x_i;θ_s)⟩, summed against the loss coefficients.
#
#   /usr/bin/python3 bench/peers/explaind_peer.py WORKDIR CASE epk:M:midpoint:N:float32|float64 [REPEATS]
#
# Before its time counts, its replay is checked against kernelscope's: f(x;θ_0) and f(x;θ_T) on the same test inputs
# (max |ours - theirs| / max |ours| <= 1e-10 in float64, 1e-4 in float32). Its reconstruction error is then measured
# against kernelscope's network f(x;θ_T), as ours is.
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from functorch import jacrev, make_functional, vmap

sys.path.insert(0, os.path.dirname(__file__))
from functorch_peer import build_net, load_parameters, time_runs  # noqa: E402


def per_sample_gradients(fnet, params, inputs):
    def single(p, x):
        return fnet(p, x.unsqueeze(0)).squeeze()

    blocks = vmap(jacrev(single), (None, 0))(params, inputs)
    return torch.cat([b.reshape(b.shape[0], -1) for b in blocks], dim=1)  # (rows, P)


def explaind_epk(fnet, params0, train_inputs, signs, trajectory, test_inputs, n):
    offsets, positions, rates = trajectory
    params = tuple(p.clone() for p in params0)
    outputs = fnet(params, test_inputs).reshape(-1)
    initial = outputs.clone()
    reconstruction = outputs.clone()
    for s in range(len(offsets) - 1):
        batch = positions[offsets[s]:offsets[s + 1]]
        x, y = train_inputs[batch], signs[batch]
        f = fnet(params, x).reshape(-1)
        # logistic loss mean softplus(−y f): a_i = −η ∂L/∂f_i = η y_i σ(−y_i f_i) / b
        a = float(rates[s]) * y * torch.sigmoid(-y * f) / len(batch)
        train_rows = per_sample_gradients(fnet, params, x)  # (b, P), at θ_s
        step = (a.unsqueeze(1) * train_rows).sum(0)  # Δθ_s (plain SGD)
        flat = torch.cat([p.reshape(-1) for p in params])
        after = flat + step
        mean = torch.zeros(test_inputs.shape[0], flat.numel(), dtype=flat.dtype)
        for k in range(n):
            t = (k + 0.5) / n
            point = unflatten(flat + t * step, params)
            mean += per_sample_gradients(fnet, point, test_inputs)
        mean /= n
        kernel = mean @ train_rows.T  # (M, b): K_s(x, x_i)
        reconstruction += kernel @ a
        params = unflatten(after, params)
    final = fnet(params, test_inputs).reshape(-1)
    return initial, final, reconstruction


def unflatten(flat, like):
    out, offset = [], 0
    for p in like:
        out.append(flat[offset:offset + p.numel()].reshape(p.shape))
        offset += p.numel()
    return tuple(out)


def main():
    if len(sys.argv) < 4:
        raise SystemExit("usage: explaind_peer.py WORKDIR CASE epk:M:midpoint:N:float32|float64 [REPEATS]")
    directory = os.path.join(sys.argv[1], sys.argv[2])
    task = sys.argv[3]
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    parts = task.split(":")
    if len(parts) != 5 or parts[0] != "epk" or parts[2] != "midpoint":
        return
    count, n, dtype_name = int(parts[1]), int(parts[3]), parts[4]
    dtype = {"float32": torch.float32, "float64": torch.float64}[dtype_name]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    info = json.load(open(os.path.join(directory, "case.json")))
    pool = torch.from_numpy(np.load(os.path.join(directory, "inputs.npy")))
    net = build_net(info["spec"], tuple(pool.shape[1:]))
    load_parameters(net, os.path.join(directory, "run", "theta0"))
    net = net.to(dtype)
    fnet, params = make_functional(net)
    params = tuple(p.detach() for p in params)
    train = info["train"]
    train_inputs, test_inputs = pool[:train].to(dtype), pool[train:train + count].to(dtype)
    signs = (torch.from_numpy(np.load(os.path.join(directory, "train_labels.npy"))) * 2 - 1).to(dtype)
    path = os.path.join(directory, "run", "trajectory")
    trajectory = (np.load(os.path.join(path, "batch_offsets.npy")), torch.from_numpy(np.load(os.path.join(path, "batch_positions.npy"))),
                  np.load(os.path.join(path, "learning_rates.npy")))
    holder = {}
    timing = time_runs(repeats, lambda: holder.update(r=explaind_epk(fnet, params, train_inputs, signs, trajectory, test_inputs, n)))
    initial, final, reconstruction = (t.detach().double().numpy() for t in holder["r"])
    ours = np.load(os.path.join(directory, f"epk_{count}_network.npy")).reshape(2, -1)
    scale = np.abs(ours[1]).max()
    difference = max(np.abs(initial - ours[0]).max() / np.abs(ours[0]).max(), np.abs(final - ours[1]).max() / scale)
    error = np.abs(reconstruction - ours[1])
    result = {"case": sys.argv[2], "task": task, "peer": f"explaind-midpoint ({dtype_name})", "n": count, "mode": f"midpoint:{n}",
              "nodes": n * count * (len(trajectory[0]) - 1), "threads": torch.get_num_threads(),
              "max_rel_difference": float(difference), "mismatch": not difference <= (1e-10 if dtype == torch.float64 else 1e-4),
              "error_vs_largest": float(error.max() / scale), "max_rel_error": float((error / np.abs(ours[1])).max()),
              "decisions_agree": bool(np.all(np.sign(reconstruction) == np.sign(ours[1]))),
              "median": timing[0], "min": timing[1], "max": timing[2], "repeats": repeats,
              "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
