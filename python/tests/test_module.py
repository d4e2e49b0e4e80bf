# pytest tests of the kernelscope Python module: shapes and dtypes, errors naming the argument, θ as a state_dict,
# and results equal to the kernelscope program's bytes. Run by ctest (PYTHONPATH and KERNELSCOPE_CLI set there).
import os
import subprocess
from collections import OrderedDict

import numpy as np
import pytest

import kernelscope as ks

CLI = os.environ.get("KERNELSCOPE_CLI", "kernelscope")
MOONS = dict(data="toy:moons", arch="mlp:12-12", epochs=2, batch=25, lr=0.3, train_size=100, test_size=20, seed=3)


def cli_train(out, **options):
    args = [CLI, "train", "--quiet", "--out", str(out)]
    for key, value in options.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    subprocess.run(args, check=True, capture_output=True)


def mlp_by_hand(theta, x):
    # torch.nn.Sequential(Flatten(), Linear(2, 8), ReLU(), Linear(8, 8), ReLU(), Linear(8, 1)) in numpy.
    h = np.maximum(x @ theta["1.weight"].T + theta["1.bias"], 0.0)
    h = np.maximum(h @ theta["3.weight"].T + theta["3.bias"], 0.0)
    return h @ theta["5.weight"].T + theta["5.bias"]


@pytest.fixture
def model():
    return ks.Model("mlp:8-8", input_shape=(2,), seed=4)


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(7, 2))


def test_parameters_are_an_ordered_state_dict(model):
    theta = model.initial_parameters()
    assert isinstance(theta, OrderedDict)
    assert list(theta) == ["1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"] == model.parameter_names
    assert [v.shape for v in theta.values()] == [(8, 2), (8,), (8, 8), (8,), (1, 8), (1,)]
    assert all(v.dtype == np.float64 and v.flags["C_CONTIGUOUS"] for v in theta.values())
    assert model.parameter_count == sum(v.size for v in theta.values())
    again = ks.Model("mlp:8-8", input_shape=(2,), seed=4).initial_parameters()
    assert all(theta[k].tobytes() == again[k].tobytes() for k in theta)  # the same seed, the same bits


def test_a_state_dict_loads_with_pytorch_semantics(model, x):
    rng = np.random.default_rng(1)
    theta = OrderedDict((k, rng.normal(size=v.shape)) for k, v in model.initial_parameters().items())
    out = model.apply(x, params=theta)
    assert out.shape == (7, 1) and out.dtype == np.float64 and out.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(out, mlp_by_hand(theta, x), rtol=1e-13, atol=1e-13)


def test_ntk_is_the_jacobian_product_and_exactly_symmetric(model, x):
    theta = model.initial_parameters()
    K = ks.ntk(model, x, params=theta)
    J = ks.per_sample_jacobian(model, x, params=theta)
    assert K.shape == (7, 7) and J.shape == (7, model.parameter_count)
    assert np.array_equal(K, K.T)
    np.testing.assert_allclose(K, J @ J.T, rtol=1e-12, atol=1e-12 * np.abs(K).max())
    cross = ks.ntk(model, x[:3], x, params=theta)
    np.testing.assert_allclose(cross, J[:3] @ J.T, rtol=1e-12, atol=1e-12 * np.abs(K).max())
    assert not K.flags["OWNDATA"]  # handed over from the library, not copied
    phi = ks.conjugate_features(model, x, params=theta)
    assert phi.shape == (7, 8)
    np.testing.assert_allclose(ks.conjugate_kernel(model, x, params=theta), phi @ phi.T, rtol=1e-13, atol=1e-13 * np.abs(phi).max() ** 2)
    np.testing.assert_allclose(phi, np.maximum(np.maximum(x @ theta["1.weight"].T + theta["1.bias"], 0) @ theta["3.weight"].T + theta["3.bias"], 0),
                               rtol=1e-13, atol=1e-13)


def test_bad_arrays_raise_errors_naming_the_argument(model, x):
    theta = model.initial_parameters()
    with pytest.raises(TypeError, match="x1: expected float64"):
        ks.ntk(model, x.astype(np.float32), params=theta)
    with pytest.raises(TypeError, match="x1: expected a numpy.ndarray"):
        ks.ntk(model, x.tolist(), params=theta)
    with pytest.raises(ValueError, match="x2: expected a C-contiguous array"):
        ks.ntk(model, x, np.ones((4, 2), order="F"), params=theta)
    with pytest.raises(ValueError, match=r"x: expected samples of shape \(2\)"):
        model.apply(np.ones((3, 5)), params=theta)
    with pytest.raises(KeyError, match="'3.bias' is missing"):
        model.apply(x, params={k: v for k, v in theta.items() if k != "3.bias"})
    with pytest.raises(KeyError, match="'4.weight' is not a parameter"):
        model.apply(x, params={**theta, "4.weight": np.ones(2)})
    with pytest.raises(ValueError, match=r"params\['1.weight'\]: expected shape \(8, 2\)"):
        model.apply(x, params={**theta, "1.weight": np.ones((2, 8))})
    with pytest.raises(ValueError, match="unknown kernel method"):
        ks.ntk(model, x, params=theta, method="fast")


def test_training_and_the_after_kernel_equal_the_program_byte_for_byte(tmp_path):
    cli_train(tmp_path / "cli", **MOONS)
    subprocess.run([CLI, "kernel", "--run", str(tmp_path / "cli"), "--kind", "after", "--out", str(tmp_path / "after.npy")],
                   check=True, capture_output=True)
    run = ks.train(str(tmp_path / "py"), **MOONS)
    cli_run = ks.Run(str(tmp_path / "cli"))
    assert run.steps == cli_run.steps == 8
    for name in run.model.parameter_names:
        assert run.thetaT[name].tobytes() == cli_run.thetaT[name].tobytes()
        assert run.parameters_at(run.steps)[name].tobytes() == run.thetaT[name].tobytes()  # replay is bit-exact
    from_cli = np.load(tmp_path / "after.npy")
    for source in (run, cli_run):
        K = source.kernel(kind="after")
        assert K.shape == from_cli.shape == (100, 100)
        assert K.tobytes() == from_cli.tobytes()
    # The same kernel through the θ-as-argument call.
    K = ks.ntk(run.model, run.train_inputs, params=run.thetaT)
    assert K.tobytes() == from_cli.tobytes()
    assert run.train_labels.shape == (100,) and set(np.unique(run.train_labels)) <= {0, 1}


def test_run_and_train_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        ks.train(str(tmp_path / "r"), data="toy:moons", epoch=2)
    with pytest.raises(Exception, match="no_such_run"):
        ks.Run(str(tmp_path / "no_such_run"))
    run = ks.train(str(tmp_path / "r"), **MOONS)
    with pytest.raises(IndexError, match="steps 0..8"):
        run.parameters_at(9)
    with pytest.raises(ValueError, match="--kind sideways"):
        run.kernel(kind="sideways")


def test_the_exact_path_kernel_reproduces_the_network(tmp_path):
    run = ks.train(str(tmp_path / "r"), **MOONS)
    x = np.random.default_rng(2).normal(size=(3, 2))
    result = run.epk(x)
    exact = result.machines[0]
    assert exact["kind"] == "exact" and exact["decisions_agree"]
    np.testing.assert_array_equal(result.final, run.model.apply(x, params=run.thetaT))
    scale = np.abs(result.final).max()
    assert np.abs(exact["outputs"] - result.final).max() <= 1e-13 * scale
    assert result.attributions.shape == (3, 100, 1) and result.kernel is None
    # The attributions sum, with f(x; θ_0), to the machine's outputs.
    np.testing.assert_allclose(result.initial + result.attributions.sum(axis=1), exact["outputs"], rtol=0, atol=1e-12 * scale)
    with pytest.raises(ValueError, match="x: expected samples of shape"):
        run.epk(np.ones((2, 3)))


def test_a_state_dict_round_trips_through_a_file(tmp_path):
    run = ks.train(str(tmp_path / "r"), **MOONS)
    np.savez(tmp_path / "theta.npz", **run.thetaT)  # out as PyTorch-named arrays ...
    with np.load(tmp_path / "theta.npz") as saved:
        loaded = {name: saved[name] for name in saved.files}
    assert list(loaded) == run.model.parameter_names
    x = run.test_inputs
    fresh = ks.Model("mlp:12-12", input_shape=(2,))  # ... and into another model of the same spec
    assert fresh.apply(x, params=loaded).tobytes() == run.model.apply(x, params=run.thetaT).tobytes()
    assert ks.ntk(fresh, x, params=loaded).tobytes() == run.kernel(kind="after", rows="test", cols="test").tobytes()
