"""Every example runs end to end at a reduced size (``--smoke``) and writes its figures.

The examples are imported and their ``main(argv)`` called in this process (TensorFlow and the
MNIST digits are loaded once). Full-size runs and their figures are in docs/gallery.md.
"""

import importlib
import json
import math
import pathlib
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"

# example module -> (extra arguments, files it must write)
CASES = {
    "toy_gan_extragradient": ([], ["field_trajectories.png", "gradient_norm.png",
                                   "convergence.png"]),
    "toy_gan_extragradient[eager]": (["--eager"], ["field_trajectories.png"]),
    "gaussian_gan_1d": ([], ["pretraining.png", "gan.png"]),
    "mnist_dense_gan": ([], ["training.png", "samples.png"]),
    "mnist_svi": ([], ["training.png", "digits.png", "interpolations.png"]),
    "mnist_vae": ([], ["training.png", "digits.png", "interpolations.png"]),
    "mnist_vae[kl-annealing]": (["--kl-annealing"], ["training.png", "digits.png"]),
    "mnist_constrained_vae": ([], ["training.png", "digits.png", "interpolations.png"]),
    "mnist_gan": ([], ["losses.png", "digits.png", "interpolations.png"]),
    "mnist_wgan_gp": ([], ["losses.png", "digits.png", "interpolations.png"]),
    "second_order_games": ([], ["matching-pennies.png", "tandem.png", "bilinear.png",
                                "impossibility.png", "ipd.png"]),
    "unrolled_gan_ring": (["--unroll", "0", "2"], ["density_K0.png", "density_K2.png",
                                                   "losses.png"]),
}


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.fixture(scope="module")
def examples_on_path():
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


#: Smoke runs under `make test-slow` only (the default run's 15-minute budget): the longest
#: ones, each of whose code paths another default case also exercises.
SLOW_CASES = {"second_order_games", "mnist_constrained_vae", "toy_gan_extragradient[eager]"}


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in sorted(CASES)])
def test_example_smoke_run(case, tmp_path, examples_on_path):
    name = case.split("[")[0]
    extra, files = CASES[case]
    module = importlib.import_module(name)
    metrics = module.main(["--smoke", "--out", str(tmp_path), *extra])
    for file in files:
        assert (tmp_path / file).stat().st_size > 1000, file
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["example"] == metrics["example"]
    assert all(math.isfinite(x) for x in _numbers(written))
    if "sample_scores" in written:
        assert 1 <= written["sample_scores"]["classes_covered"] <= 10


def test_every_example_has_a_smoke_case():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == {case.split("[")[0] for case in CASES}
