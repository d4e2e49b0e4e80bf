# A student's first look at the exact path kernel from Python: train a small net on two moons, rebuild its outputs as a
# kernel machine, plot both decision regions (when matplotlib is there) and list the training points that decided one test input.
# Run from the build tree: PYTHONPATH=build/python python3 examples/two_moons.py [OUT_DIR]
import sys
import tempfile

import numpy as np

import kernelscope as ks

out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="kernelscope-moons-") + "/run"

# 1. Train: the same run directory `kernelscope train` would write (θ_0, every batch, θ_T), bit for bit.
run = ks.train(out, data="toy:moons", arch="mlp:16-16", epochs=3, batch=25, lr=0.3, train_size=100, test_size=50, seed=1)
print(run)
print("parameters (PyTorch state_dict names):", {name: value.shape for name, value in run.thetaT.items()})

# 2. The exact path kernel on a grid of inputs: f(x; θ_T) = f(x; θ_0) + Σ over steps and training points of kernel terms.
xs = np.linspace(-1.5, 2.5, 21)
ys = np.linspace(-1.0, 1.5, 15)
grid = np.array([[x, y] for y in ys for x in xs])
result = run.epk(grid)
exact = result.machines[0]
print(f"exact path kernel: {result.quadrature['pieces']} pieces, max relative error {exact['max_rel_error']:.1e}, "
      f"decisions agree: {exact['decisions_agree']}")
for machine in result.machines[1:]:
    print(f"  {machine['kind']:>9} machine: max relative error {machine['max_rel_error']:.1e}, decisions agree: {machine['decisions_agree']}")

# 3. Which training points decided one test input: the largest attributions c_i(x) = Σ_s a_{i,s} K_s(x, x_i).
test = run.test_inputs[:1]
attributions = run.epk(test).attributions[0, :, 0]
order = np.argsort(attributions)
print(f"test input {test[0]}: network output {run.model.apply(test, params=run.thetaT)[0, 0]:+.4f}")
for i in order[::-1][:3]:
    print(f"  pushes up:   training point {i:3d} at {run.train_inputs[i]}, label {run.train_labels[i]}, {attributions[i]:+.4f}")
for i in order[:3]:
    print(f"  pushes down: training point {i:3d} at {run.train_inputs[i]}, label {run.train_labels[i]}, {attributions[i]:+.4f}")

# 4. The two decision regions side by side, when matplotlib is installed.
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (apt-get install python3-matplotlib)")
    sys.exit(0)
figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for axis, values, title in ((axes[0], result.final, "network f(x; θ_T)"), (axes[1], exact["outputs"], "exact path kernel machine")):
    axis.contourf(xs, ys, values[:, 0].reshape(len(ys), len(xs)) > 0, alpha=0.3, cmap="coolwarm")
    axis.scatter(run.train_inputs[:, 0], run.train_inputs[:, 1], c=run.train_labels, cmap="coolwarm", s=12, edgecolors="k")
    axis.set_title(title)
picture = out + "-regions.png"
figure.savefig(picture, dpi=100)
print("decision regions written to", picture)
