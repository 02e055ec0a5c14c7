"""The stacked-MNIST GAN pipeline of tfgames.lab.protocols (run_stacked_mnist_seeds) and the
figure of docs/figures/evaluation/stacked_mnist_gan.py, at a smoke size (a few seconds).

The digits are synthetic (no MNIST needed) and the classifier is an oracle reading a digit from
the mean intensity of a channel, so the test checks the pipeline: the real batch the GAN sees,
training with a registry optimizer, the protocol's scores, the run files and their resumption,
the table and the figure. The protocol's scoring itself is checked in tests/test_protocols.py.
"""

import dataclasses
import importlib.util
import json
import math
import os

import numpy as np
import pytest

from tfgames.lab import protocols as pr
from tfgames.lab.mnist import MnistData

HERE = os.path.dirname(__file__)
SMOKE = dataclasses.replace(pr.STACKED_MNIST_CONFIGS["smoke"], n_samples=100)


class _MeanOracle:
    """A 'classifier': digit = floor(10 * mean intensity), clipped to 0..9."""

    def predict(self, x, batch_size=None, verbose=0):
        digit = np.clip(np.floor(x.reshape(len(x), -1).mean(1) * 10), 0, 9).astype(int)
        return np.eye(10)[digit]


def _digits(n=12):
    """N distinct synthetic 'digits': digit k is the constant image k / n."""
    images = np.broadcast_to((np.arange(n) / n)[:, None, None, None], (n, 28, 28, 1))
    return MnistData(np.array(images, np.float32), np.arange(n) % 10, "synthetic")


def test_real_batch_stacks_three_independently_drawn_digits():
    data = _digits()
    model = pr._stacked_mnist_gan(SMOKE, data.images[..., 0], seed=0)
    x = np.asarray(model.sample_real(400)).reshape(400, 28, 28, 3)
    # every channel of every image is one whole digit of the pool (constant image k / 12) ...
    assert np.all(x == x[:, :1, :1, :])
    k = np.round(x[:, 0, 0, :] * 12).astype(int)
    np.testing.assert_allclose(x[:, 0, 0, :], k / 12, atol=1e-7)
    # ... drawn independently and uniformly per channel: all 12 digits in every channel, and
    # the three channels of an image differ in most images (all equal: 1/144 of them).
    assert all(len(np.unique(k[:, c])) == 12 for c in range(3))
    assert np.mean((k[:, 0] == k[:, 1]) & (k[:, 1] == k[:, 2])) < 0.05


def test_smoke_run_scores_files_resume_table(tmp_path):
    data = _digits()
    rows = pr.run_stacked_mnist_seeds(["adam"], [0], config=SMOKE, out=tmp_path,
                                      classifier=_MeanOracle(), data=data)
    (row,) = rows
    assert row["protocol"] == "stacked-mnist" and row["optimizer"] == "adam"
    assert row["config"]["steps"] == 3 and row["n_samples"] == 100 and row["finite"]
    counts = np.array(row["mode_counts"])
    assert counts.shape == (1000,) and counts.sum() == 100
    assert 1 <= row["modes"] == np.count_nonzero(counts) <= 100
    p = counts[counts > 0] / 100
    assert row["reverse_kl"] == pytest.approx(math.log(1000) + np.sum(p * np.log(p)))
    assert 0 <= row["reverse_kl"] <= math.log(1000) + 1e-9
    assert set(row["final_losses"]) == {"discriminator_loss", "generator_loss"}
    base = tmp_path / "stacked-mnist__smoke__adam__seed0"
    stored = json.loads(base.with_suffix(".json").read_text())
    samples = np.load(base.with_suffix(".npz"))["samples"]
    assert samples.shape == (100, 28, 28, 3) and samples.dtype == np.uint8
    assert stored["modes"] == row["modes"]
    # a resumed run reads the file instead of training again
    stored["modes"] = -1
    base.with_suffix(".json").write_text(json.dumps(stored))
    (again,) = pr.run_stacked_mnist_seeds(["adam"], [0], config=SMOKE, out=tmp_path,
                                          classifier=_MeanOracle(), data=data)
    assert again["modes"] == -1
    table = pr.format_table(pr.summarize([row]))
    assert "Protocol `stacked-mnist` (1000 modes, 100 samples evaluated)" in table
    assert f"| stacked-mnist | adam | smoke | 1 | {row['modes']:.2f} +- nan (s.e. nan) | n/a |" \
        in table
    assert ("| stacked-mnist | DCGAN (PacGAN Table 3, D = G/4) | PacGAN's | 50 | "
            "78.5 (s.e. 17.56) | n/a | 5.21 (s.e. 0.19) |") in table


def test_sample_figure_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location(
        "stacked_mnist_gan", os.path.join(HERE, "..", "docs", "figures", "evaluation",
                                          "stacked_mnist_gan.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    np.savez_compressed(tmp_path / "stacked-mnist__smoke__adam__seed0.npz",
                        samples=np.zeros((100, 28, 28, 3), np.uint8))
    figure = tmp_path / "grid.png"
    titles = script.sample_grid(tmp_path, ["adam", "sga"], [0, 1], "smoke", figure,
                                data=_digits())
    assert titles == ["real stacked MNIST", "adam", "sga"]  # runs without files: blank
    assert figure.is_file() and figure.stat().st_size > 1000
