# pytest tests of the kernelscope Python module's analyses: SVMs, kernel metrics, invariance and image transformations,
# the after-kernel protocol, and Ctrl-C during training. Each checks against numpy or against another route to the number.
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import kernelscope as ks

MOONS = dict(data="toy:moons", arch="mlp:12-12", epochs=2, batch=25, lr=0.3, train_size=100, test_size=20, seed=3, quiet=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ks.train(str(tmp_path_factory.mktemp("runs") / "moons"), **MOONS)


def test_the_after_kernel_protocol_equals_its_parts(run):
    result = run.after_kernel()
    after = result.after
    train_gram = run.kernel(kind="after")
    assert after.train_gram.tobytes() == train_gram.tobytes()
    np.testing.assert_array_equal(after.test_gram, run.kernel(kind="after", rows="test", cols="train"))
    model = ks.svm(train_gram, run.train_labels)
    assert after.svm_accuracy == model.accuracy(after.test_gram, run.test_labels)
    decisions = model.decision(after.test_gram)
    assert model.accuracy(after.test_gram, run.test_labels) == np.mean((decisions > 0) == (run.test_labels == 1))
    assert 0.5 <= after.network_accuracy <= 1.0 and result.initial.train_gram.shape == (100, 100)
    with pytest.raises(ValueError, match="labels: 99 labels for a Gram of 100 points"):
        ks.svm(train_gram, run.train_labels[:99])
    with pytest.raises(ValueError, match=r"cross: expected \(M, 100\)"):
        model.decision(after.test_gram[:, :50].copy())


def test_kernel_metrics_against_numpy(run):
    K, L = run.kernel(kind="ntk-init"), run.kernel(kind="after")
    y = np.where(run.train_labels == 1, 1.0, -1.0)
    assert ks.kernel_alignment(K, L) == pytest.approx(np.sum(K * L) / np.linalg.norm(K) / np.linalg.norm(L), rel=1e-12)
    assert ks.kernel_distance(K, K) == pytest.approx(0.0, abs=1e-12)
    H = np.eye(100) - 1.0 / 100
    Kc, Lc = H @ K @ H, H @ L @ H
    assert ks.centered_kernel_alignment(K, L) == pytest.approx(np.sum(Kc * Lc) / np.linalg.norm(Kc) / np.linalg.norm(Lc), rel=1e-10)
    assert ks.target_alignment(K, run.train_labels) == pytest.approx(y @ K @ y / np.linalg.norm(K) / 100, rel=1e-12)
    eigenvalues = np.linalg.eigvalsh(K)
    assert ks.effective_rank(K)["trace_ratio"] == pytest.approx(np.trace(K) / eigenvalues.max(), rel=1e-10)
    with pytest.raises(ValueError, match="kernel: expected a square Gram"):
        ks.effective_rank(K[:10].copy())


def test_transformations_and_invariance_against_numpy():
    images = np.random.default_rng(5).uniform(size=(3, 1, 8, 8))
    shifted = ks.translate_images(images, 2, -1)
    expected = np.zeros_like(images)
    expected[:, :, :7, 2:] = images[:, :, 1:, :6]  # out(y, x) = in(y + 1, x − 2)
    np.testing.assert_array_equal(shifted, expected)
    np.testing.assert_array_equal(ks.rotate_images(images, np.pi / 2), np.rot90(images, 1, axes=(2, 3)))
    model = ks.Model("conv:4,M", input_shape=(1, 8, 8), seed=2)
    theta = model.initial_parameters()
    assert ks.invariance_score(model, images, images, params=theta) == pytest.approx(1.0, abs=1e-15)
    assert ks.invariance_score(model, images, shifted, params=theta) < 1.0
    with pytest.raises(ValueError, match="images: expected 4 to 4 dimensions"):
        ks.rotate_images(images[0], 0.1)


def test_ctrl_c_stops_training_and_leaves_no_run(tmp_path):
    out = tmp_path / "long"
    script = ("import kernelscope, sys\n"
              "try:\n"
              "    print('ready', flush=True)\n"
              f"    kernelscope.train({str(out)!r}, data='toy:moons', arch='mlp:256-256', epochs=100000, quiet=True)\n"
              "except KeyboardInterrupt:\n"
              "    print('interrupted'); sys.exit(3)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    assert child.stdout.readline() == b"ready\n"  # imported; from here a Ctrl-C is caught by the script, in train() or before it
    time.sleep(1.0)  # into training (or not yet, on a loaded machine: the test holds either way)
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 3, stderr.decode()
    assert b"interrupted" in stdout
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary directory or lock left behind
