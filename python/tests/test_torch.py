# The README's PyTorch table, checked where Debian's python3-torch is installed (skipped elsewhere: the module never
# needs PyTorch): each spec's torch.nn.Sequential takes kernelscope's θ as its state_dict and gives the same outputs.
import numpy as np
import pytest

import kernelscope as ks

torch = pytest.importorskip("torch")
nn = torch.nn


def sequentials():
    return [
        ("mlp:16-16", (2,), nn.Sequential(nn.Flatten(), nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))),
        ("vgg:16", (3, 32, 32), nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Flatten(), nn.Linear(2048, 1))),
        ("conv:8,M,16,A", (1, 28, 28), nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.AvgPool2d(2, 2), nn.Flatten(), nn.Linear(784, 1))),
    ]


@pytest.mark.parametrize("spec,shape,net", sequentials(), ids=lambda v: v if isinstance(v, str) else "")
def test_state_dicts_move_between_kernelscope_and_pytorch(spec, shape, net):
    model = ks.Model(spec, input_shape=shape, seed=7)
    net = net.double()
    x = np.random.default_rng(3).normal(size=(4,) + shape)
    # kernelscope's θ into PyTorch.
    theta = model.initial_parameters()
    net.load_state_dict({name: torch.from_numpy(value) for name, value in theta.items()})
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.apply(x, params=theta), theirs, rtol=1e-12, atol=1e-12)
    # PyTorch's own initialisation into kernelscope.
    torch.manual_seed(0)
    for layer in net:
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    params = {name: tensor.detach().numpy().copy() for name, tensor in net.state_dict().items()}
    assert list(params) == model.parameter_names
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.apply(x, params=params), theirs, rtol=1e-12, atol=1e-12)
