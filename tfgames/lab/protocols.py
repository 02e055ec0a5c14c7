r"""Pinned mode-coverage protocols (PacGAN 2-D ring and grid, stacked MNIST), multi-seed tables.

Published mode counts differ between papers for the same method because the evaluation
differs (VEEGAN's Table 1 and PacGAN's Table 1 disagree on the plain GAN). A *protocol* here
fixes everything the number depends on: the target mixture, the number of generated samples
evaluated, the distance rule, the mode-capture rule and the KL formula, and it has a name that
every table prints.

The 2-D protocols transcribe the PacGAN authors' code (fjxmlzn/PacGAN,
``synthetic_data_experiments``: ``2DRing_GAN&PacGAN/config.py``, ``2DGrid_GAN&PacGAN/config.py``
and ``PacGAN/pacgan/extensions.py``, classes ``GraphLogger`` and ``MetricLogger``):

- ``pacgan-ring8``: 8 Gaussians with means (cos(2 pi k / 8), sin(2 pi k / 8)), k = 0..7
  (radius 1), covariance 0.01^2 I.
- ``pacgan-grid25``: 25 Gaussians with means {-4, -2, 0, 2, 4}^2, covariance 0.05^2 I.
- Evaluation (``MetricLogger.do``): 2,500 generated samples (``num_log_figure_sample``); each
  sample goes to the mode with the smallest normalised distance
  sqrt(sum_j (x_j - mu_j)^2 / sigma^2); it is *high quality* when that distance is < 3
  (strictly; ``dis_thre = 3``). A mode is captured when it receives at least one high-quality
  sample (``len(numpy.nonzero(detail_of_coverage)[0])``). High-quality share = high-quality
  samples / all samples (``good points percentage``).
- Reverse KL: the code logs ``entropy of coverage`` = H(p) with p_k = n_k / sum_k n_k over the
  high-quality samples (``scipy.stats.entropy``); KL(p || uniform over K modes) =
  sum_{k: n_k > 0} p_k ln(K p_k) = ln K - H(p), nats, empty modes contributing 0 (0 ln 0 = 0).
  With no high-quality sample p is undefined (the code's 0/0 gives NaN); it is reported as NaN.

``tfgames-grid16`` is tfgames' own 4x4 grid (the SGA notebook's target, std 0.02) under the
same rules. ``stacked-mnist`` (Metz et al. 2017, VEEGAN, PacGAN) stacks three MNIST digits as
the channels of one 28x28x3 image: 1,000 modes, each channel classified by the offline MNIST
classifier (:func:`tfgames.lab.mnist.mnist_classifier`); modes captured = modes with at least
one sample, reverse KL = KL(p || uniform over 1,000) of the predicted-mode histogram of all
samples (26,000 in PacGAN; here ``n_samples``, default 26,000; classifying them takes seconds
on a CPU).

:func:`run_seeds` trains a registered optimizer on a 2-D protocol over several seeds (results
written per seed, so an interrupted run resumes), :func:`run_stacked_mnist_seeds` the same on
stacked MNIST (an MLP GAN, :data:`STACKED_MNIST_CONFIGS`; driven by
``docs/figures/evaluation/stacked_mnist_gan.py``), :func:`summarize` and :func:`format_table`
make the mean +- std table with the protocol's name. The training configuration
(:data:`TRAINING_CONFIGS`) is *not* pinned by the protocol and is printed with it: the default
``small`` is far smaller than PacGAN's (4x400 BatchNorm generator, maxout discriminator,
400 epochs of 1,000 steps), so its numbers are not comparable with PacGAN's Table 1 as a
reproduction of their training; only the evaluation is the same.

Command line (until ``tfgames run`` takes seeds)::

    python -m tfgames.lab.protocols run --protocol pacgan-ring8 --optimizers adam,sga \
        --seeds 0,1,2,3,4 --out runs/protocols
    python -m tfgames.lab.protocols summarize runs/protocols
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PROTOCOLS",
    "PUBLISHED",
    "STACKED_MNIST_CONFIGS",
    "TRAINING_CONFIGS",
    "MixtureProtocol",
    "StackedMnistConfig",
    "TrainingConfig",
    "evaluate_mixture",
    "format_table",
    "get_protocol",
    "reverse_kl",
    "run_one",
    "run_seeds",
    "run_stacked_mnist_one",
    "run_stacked_mnist_seeds",
    "stacked_mnist_modes",
    "stacked_mnist_real",
    "summarize",
    "summarize_folder",
]


def reverse_kl(counts: Any) -> float:
    """KL(p || uniform) = sum_{k: n_k > 0} p_k ln(K p_k) = ln K - H(p), p_k = n_k / sum n (nats);
    NaN when every count is zero (p undefined).
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1 or n.size < 1 or np.any(n < 0):
        raise ValueError(
            f"Argument `counts` must be a non-empty 1-D array of counts >= 0. Received: {n!r}."
        )
    total = n.sum()
    if total == 0:
        return float("nan")
    p = n[n > 0] / total
    return float(max(np.sum(p * np.log(n.size * p)), 0.0))


@dataclasses.dataclass(frozen=True)
class MixtureProtocol:
    """A pinned 2-D mixture-of-Gaussians evaluation.

    Attributes:
      name: printed in every table.
      centres: mode means, shape (K, 2).
      std: per-coordinate standard deviation of every component.
      n_samples: generated samples evaluated.
      n_std: high-quality threshold in normalised distance (strict <).
      source: where the definition comes from.
    """

    name: str
    centres: tuple
    std: float
    n_samples: int = 2500
    n_std: float = 3.0
    source: str = ""

    @property
    def modes(self) -> int:
        return len(self.centres)

    def centres_array(self) -> np.ndarray:
        return np.asarray(self.centres, dtype=np.float64)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """N real samples: uniform component, Gaussian noise (NumPy, float64)."""
        rng = np.random.default_rng(seed)
        centres = self.centres_array()
        return centres[rng.integers(0, len(centres), n)] + self.std * rng.standard_normal((n, 2))

    def evaluate(self, samples: Any) -> dict[str, Any]:
        """:func:`evaluate_mixture` with this protocol."""
        return evaluate_mixture(samples, self)


def evaluate_mixture(samples: Any, protocol: MixtureProtocol | str) -> dict[str, Any]:
    """Mode coverage of generated 2-D samples under a pinned protocol (see the module doc).

    Args:
      samples: generated samples, shape (N, 2). The protocol fixes N (``n_samples``); a
        different N is an error, so that a table never mixes sample counts. Non-finite rows
        count as samples that are not high quality.
      protocol: a :class:`MixtureProtocol` or its name.

    Returns:
      ``{"protocol", "modes", "high_quality_share", "reverse_kl", "mode_counts"}``: modes
      captured (int), share of high-quality samples, KL(p || uniform) in nats, and the
      high-quality count of every mode.
    """
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"Argument `samples` must have shape (N, 2). Received: {x.shape}.")
    if x.shape[0] != protocol.n_samples:
        raise ValueError(
            f"Protocol {protocol.name!r} evaluates exactly {protocol.n_samples} samples. "
            f"Received: {x.shape[0]}. Generate n_samples={protocol.n_samples} samples."
        )
    centres = protocol.centres_array()
    normalised = np.sqrt(((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)) / protocol.std
    finite = np.all(np.isfinite(x), axis=1)
    normalised = np.where(finite[:, None], normalised, np.inf)
    nearest = np.argmin(normalised, axis=1)
    good = finite & (normalised[np.arange(len(x)), nearest] < protocol.n_std)
    counts = np.bincount(nearest[good], minlength=protocol.modes)
    return {
        "protocol": protocol.name,
        "modes": int(np.count_nonzero(counts)),
        "high_quality_share": float(good.mean()),
        "reverse_kl": reverse_kl(counts),
        "mode_counts": counts,
    }


_PACGAN = "fjxmlzn/PacGAN synthetic_data_experiments (config.py, pacgan/extensions.py)"
_RING = tuple((math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8))
_GRID25 = tuple((float(i), float(j)) for i in range(-4, 5, 2) for j in range(-4, 5, 2))
_GRID16 = tuple((a, b) for a in (1.5, 0.5, -1.5, -0.5) for b in (1.5, 0.5, -0.5, -1.5))

PROTOCOLS: dict[str, MixtureProtocol] = {
    p.name: p for p in (
        MixtureProtocol("pacgan-ring8", _RING, 0.01, source=_PACGAN),
        MixtureProtocol("pacgan-grid25", _GRID25, 0.05, source=_PACGAN),
        MixtureProtocol("tfgames-grid16", _GRID16, 0.02,
                        source="SGA notebook's 4x4 grid (tfgames.lab.samplers.GRID_CENTRES) "
                               "with PacGAN's evaluation rules"),
    )
}


def _pacgan_table1(*rows: tuple[str, tuple, tuple, tuple]) -> list[dict[str, Any]]:
    """Rows ``(method, modes, hq, kl)`` of PacGAN's Table 1 as :data:`PUBLISHED` entries."""
    return [{"method": f"{method} (PacGAN Table 1)", "modes": modes, "hq": hq, "kl": kl}
            for method, modes, hq, kl in rows]


#: PacGAN's Table 1 (Lin et al., NeurIPS 2018; read from results/Table1.png in fjxmlzn/PacGAN):
#: modes, high-quality %, reverse KL as (mean, standard error over 10 trials) -- the paper's
#: +- is the standard error, not the standard deviation. Their architecture and 400 epochs.
PUBLISHED: dict[str, list[dict[str, Any]]] = {
    "pacgan-ring8": _pacgan_table1(
        ("GAN", (6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
        ("ALI", (6.6, 0.3), (97.6, 0.4), (0.36, 0.04)),
        ("PacGAN4", (7.8, 0.1), (95.9, 1.4), (0.07, 0.02)),
    ),
    "pacgan-grid25": _pacgan_table1(
        ("GAN", (17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
        ("ALI", (24.1, 0.4), (95.7, 0.6), (0.14, 0.03)),
        ("PacGAN4", (24.8, 0.2), (93.6, 0.6), (0.04, 0.01)),
    ),
}


#: PacGAN's stacked-MNIST tables (read from results/Table2.png and Table3.png in fjxmlzn/PacGAN;
#: DCGAN networks, 26,000 samples scored): modes and reverse KL as (mean, standard error) over
#: ``trials`` runs; no high-quality share (None). Table 2 is VEEGAN's setting, Table 3 the
#: unrolled-GAN setting with a discriminator 1/4 the size of the generator (their hardest).
PUBLISHED["stacked-mnist"] = [
    {"method": method, "modes": modes, "hq": None, "kl": kl, "trials": trials}
    for method, modes, kl, trials in (
        ("DCGAN (PacGAN Table 2, VEEGAN's setting)", (78.9, 6.46), (4.50, 0.127), 10),
        ("PacDCGAN2 (PacGAN Table 2)", (1000.0, 0.00), (0.06, 0.003), 10),
        ("DCGAN (PacGAN Table 3, D = G/4)", (78.5, 17.56), (5.21, 0.19), 50),
        ("PacDCGAN2 (PacGAN Table 3, D = G/4)", (484.5, 32.99), (2.61, 0.22), 50),
    )
]


def get_protocol(name: str) -> MixtureProtocol:
    """The registered :class:`MixtureProtocol` called ``name``."""
    if name not in PROTOCOLS:
        raise ValueError(f"Unknown protocol {name!r}; choose from {sorted(PROTOCOLS)}.")
    return PROTOCOLS[name]


# -- Stacked MNIST -------------------------------------------------------------------------------

def stacked_mnist_real(n: int, *, seed: int = 0, data: Any = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """N stacked-MNIST images (n, 28, 28, 3): three independently drawn offline digits as the
    channels, and their modes 100 d_1 + 10 d_2 + d_3 (0..999).

    Args:
      n: number of images.
      seed: seed of the digit draws.
      data: a :class:`tfgames.lab.mnist.MnistData` (default ``load_mnist("auto", "train")``).
    """
    from tfgames.lab import mnist

    data = mnist.load_mnist("auto", split="train") if data is None else data
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data.labels), size=(int(n), 3))
    images = np.concatenate([data.images[idx[:, c]] for c in range(3)], axis=-1)
    labels = data.labels[idx]
    return images, labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]


def stacked_mnist_modes(images: Any, classifier: Any, *, n_samples: int | None = 26_000,
                        batch_size: int = 512) -> dict[str, Any]:
    """The ``stacked-mnist`` protocol: modes captured and reverse KL over 1,000 modes.

    Each channel of each (28, 28, 3) image in [0, 1] is classified by ``classifier`` (a model
    mapping (N, 28, 28, 1) to 10 class probabilities, e.g.
    :func:`tfgames.lab.mnist.mnist_classifier`); the mode is 100 c_1 + 10 c_2 + c_3. Modes
    captured = modes predicted for at least one image; reverse KL = KL(p || uniform over 1,000)
    (:func:`reverse_kl`) of the predicted-mode histogram.

    Args:
      images: shape (N, 28, 28, 3), values in [0, 1].
      classifier: the digit classifier.
      n_samples: the N the protocol requires (PacGAN: 26,000); ``None`` accepts any N (then the
        table must say so).
      batch_size: prediction batch size.

    Returns:
      ``{"protocol": "stacked-mnist", "modes", "reverse_kl", "mode_counts", "n_samples"}``.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (28, 28, 3):
        raise ValueError(f"Argument `images` must have shape (N, 28, 28, 3). Received {x.shape}.")
    if n_samples is not None and x.shape[0] != n_samples:
        raise ValueError(
            f"Protocol 'stacked-mnist' evaluates exactly {n_samples} images. Received: "
            f"{x.shape[0]}. Pass n_samples=None to accept another count (and report it)."
        )
    if x.min() < -1e-3 or x.max() > 1 + 1e-3:
        raise ValueError(
            f"`images` must have values in [0, 1]. Received range [{x.min():.4g}, {x.max():.4g}]."
            " Rescale tanh outputs with (x + 1) / 2."
        )
    digits = []
    for c in range(3):
        probs = np.asarray(classifier.predict(x[..., c:c + 1], batch_size=batch_size,
                                              verbose=0))
        digits.append(np.argmax(probs, axis=-1))
    modes = digits[0] * 100 + digits[1] * 10 + digits[2]
    counts = np.bincount(modes, minlength=1000)
    return {
        "protocol": "stacked-mnist",
        "modes": int(np.count_nonzero(counts)),
        "reverse_kl": reverse_kl(counts),
        "mode_counts": counts,
        "n_samples": int(x.shape[0]),
    }


# -- Training over seeds ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The training run of one seed (not part of the protocol; printed with every table).

    Attributes:
      name: printed in tables.
      depth, width: hidden ReLU layers and units of both MLPs.
      z_dim: generator noise dimension (N(0, I)).
      batch_size: real and generated samples per step.
      steps: training steps.
      learning_rate: passed to the registry's optimizer.
    """

    name: str = "small"
    depth: int = 3
    width: int = 128
    z_dim: int = 2
    batch_size: int = 100
    steps: int = 3000
    learning_rate: float = 1e-3


TRAINING_CONFIGS: dict[str, TrainingConfig] = {
    "small": TrainingConfig(),
    "smoke": TrainingConfig(name="smoke", depth=1, width=16, steps=20),
}


def _mixture_gan(protocol: MixtureProtocol, config: TrainingConfig, seed: int):
    """The experiments' :class:`~tfgames.lab.experiments.gan.MLPGAN` of ``config``'s sizes,
    its real samples drawn from the protocol's mixture inside the train step.
    """
    import keras
    import tensorflow as tf

    from tfgames.lab.experiments.gan import MLPGAN, GanConfig

    centres = tf.constant(protocol.centres_array(), tf.float32)

    class MixtureGAN(MLPGAN):
        def sample_real(self, n, seed):
            component = keras.random.randint((n,), 0, protocol.modes, seed=seed)
            noise = keras.random.normal((n, 2), seed=seed)
            return tf.gather(centres, component) + protocol.std * noise

    sizes = GanConfig(x_dim=2, depth=config.depth, width=config.width, z_dim=config.z_dim,
                      batch_size=config.batch_size, learning_rate=config.learning_rate,
                      steps=config.steps)
    return MixtureGAN(sizes, seed=seed)


def run_one(protocol: MixtureProtocol | str, optimizer: str, seed: int, *,
            config: TrainingConfig | str = "small", callbacks: Sequence[Any] = ()
            ) -> dict[str, Any]:
    """Train a GAN on the protocol's mixture with a registered optimizer; evaluate it.

    Keras is seeded with ``seed`` (same initial weights for every optimizer), the model's
    noise stream too; after ``config.steps`` steps, ``protocol.n_samples`` samples are drawn
    from the generator with z ~ N(0, I) seeded by ``seed + 1`` and evaluated.

    Returns:
      The row: protocol, optimizer, seed, config name, the metrics of
      :func:`evaluate_mixture` (mode counts as a list), wall seconds, and whether the samples
      were finite.
    """
    import keras
    import tensorflow as tf

    from tfgames.datasets import step_dataset
    from tfgames.lab.experiments import registry

    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    config = TRAINING_CONFIGS[config] if isinstance(config, str) else config
    keras.utils.set_random_seed(seed)
    model = _mixture_gan(protocol, config, seed)
    model.compile(optimizer=registry.make_optimizer(optimizer, config.learning_rate))
    start = time.time()
    model.fit(step_dataset(config.steps), epochs=1, verbose=0, callbacks=list(callbacks))
    wall = time.time() - start
    z = tf.random.stateless_normal((protocol.n_samples, config.z_dim), seed=[seed + 1, 0])
    samples = np.asarray(model.generator(z, training=False), dtype=np.float64)
    result = evaluate_mixture(samples, protocol)
    return {
        "protocol": protocol.name,
        "optimizer": optimizer,
        "seed": int(seed),
        "config": dataclasses.asdict(config),
        "modes": result["modes"],
        "high_quality_share": result["high_quality_share"],
        "reverse_kl": result["reverse_kl"],
        "mode_counts": result["mode_counts"].tolist(),
        "finite": bool(np.all(np.isfinite(samples))),
        "wall_seconds": wall,
        "samples": samples,
    }


def _row_file(out: Path, protocol: str, optimizer: str, config: str, seed: int) -> Path:
    return out / f"{protocol}__{config}__{optimizer}__seed{seed}.json"


def run_seeds(protocol: MixtureProtocol | str, optimizers: Sequence[str], seeds: Sequence[int],
              *, config: TrainingConfig | str = "small", out: str | os.PathLike | None = None,
              resume: bool = True) -> list[dict[str, Any]]:
    """Run :func:`run_one` for every optimizer and seed; one JSON file per run in ``out``.

    With ``out`` and ``resume=True`` a run whose file exists is read instead of repeated, so an
    interrupted job continues where it stopped. The samples of every run are saved next to
    its JSON file (``.npz``) for density figures.

    Returns:
      The rows (without samples), in optimizer-then-seed order.
    """
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    config = TRAINING_CONFIGS[config] if isinstance(config, str) else config
    return _resumable_rows(
        out, protocol.name, config.name, optimizers, seeds, resume,
        lambda optimizer, seed: run_one(protocol, optimizer, seed, config=config))


def _resumable_rows(out: str | os.PathLike | None, protocol: str, config: str,
                    optimizers: Sequence[str], seeds: Sequence[int], resume: bool,
                    run: Callable[[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """``run(optimizer, seed)`` for every optimizer and seed, in that order; with ``out``, each
    row goes to its JSON file (written whole, then renamed) and its ``samples`` to an ``.npz``
    beside it, and with ``resume`` an existing file is read instead of running again.
    """
    folder = Path(out) if out is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for optimizer in optimizers:
        for seed in seeds:
            file = (_row_file(folder, protocol, optimizer, config, int(seed))
                    if folder is not None else None)
            if file is not None and resume and file.is_file():
                rows.append(json.loads(file.read_text()))
                continue
            row = run(optimizer, int(seed))
            samples = row.pop("samples")
            if file is not None:
                np.savez_compressed(file.with_suffix(".npz"), samples=samples)
                tmp = file.with_suffix(".tmp")
                tmp.write_text(json.dumps(row, indent=1, default=_json_default))
                os.replace(tmp, file)
            rows.append(row)
    return rows


# -- Stacked MNIST GAN over seeds ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StackedMnistConfig:
    """A GAN training run on stacked MNIST (not part of the protocol; printed with the table).

    Both players are MLPs (leaky ReLU by default) on the flattened 28x28x3 image (Sonnet-1
    initialisation,
    :func:`tfgames.lab.models.mlp`); the generator's output goes through a sigmoid, so samples
    lie in [0, 1] like the real images. Losses: the non-saturating GAN losses with logits
    (:func:`tfgames.lab.experiments.gan.gan_losses`).

    Attributes:
      name: printed in tables and used in the run files' names.
      z_dim: generator noise dimension (N(0, I)).
      generator_hidden, discriminator_hidden: hidden widths of the two MLPs.
      batch_size: real and generated images per step.
      steps: training steps.
      learning_rate: passed to the registry's optimizer.
      n_samples: generated images scored (the protocol's 26,000).
      digits: ``"train"`` or ``"all"``: the MNIST split the real channels are drawn from.
      activation: the hidden layers' activation (a Keras name).
    """

    name: str = "mlp-small"
    z_dim: int = 64
    generator_hidden: tuple = (256, 512)
    discriminator_hidden: tuple = (256,)
    batch_size: int = 64
    steps: int = 1500
    learning_rate: float = 2e-4
    n_samples: int = 26_000
    digits: str = "train"
    activation: str = "leaky_relu"


STACKED_MNIST_CONFIGS: dict[str, StackedMnistConfig] = {
    "mlp-small": StackedMnistConfig(),
    "smoke": StackedMnistConfig(name="smoke", z_dim=4, generator_hidden=(8,),
                                discriminator_hidden=(8,), batch_size=8, steps=3,
                                n_samples=200),
}


def _stacked_mnist_gan(config: StackedMnistConfig, digits: np.ndarray, seed: int):
    """A :class:`~tfgames.model.GameModel` whose real batch is ``config.batch_size`` stacked
    images, each channel an independently drawn digit of ``digits`` (N, 28, 28), drawn in the
    train step from the model's noise stream (so ``fit`` needs only a dummy data set).
    """
    import keras
    import tensorflow as tf

    from tfgames.lab import models
    from tfgames.lab.experiments.gan import gan_losses
    from tfgames.model import GameModel

    pool = tf.constant(np.asarray(digits, np.float32).reshape(len(digits), 784))
    size = 28 * 28 * 3

    class StackedMnistGAN(GameModel):
        def __init__(self, **kwargs):
            super().__init__(seed=seed, **kwargs)
            self.discriminator = models.mlp(size, list(config.discriminator_hidden), 1,
                                            activation=config.activation, name="discriminator")
            self.generator = models.mlp(config.z_dim, list(config.generator_hidden), size,
                                        activation=config.activation,
                                        output_activation="sigmoid", name="generator")

        def players(self):
            return {"discriminator": self.discriminator, "generator": self.generator}

        def sample_real(self, n):
            """(n, 2352): flattened (28, 28, 3) images, channel c = digit idx[:, c]."""
            idx = keras.random.randint((n, 3), 0, len(digits), seed=self.seed_generator)
            channels = tf.gather(pool, idx)  # (n, 3, 784)
            return tf.reshape(tf.transpose(channels, [0, 2, 1]), (n, size))

        def replica_batch_size(self, data):
            return config.batch_size

        def compute_losses(self, data, training=False):
            x_real = self.sample_real(config.batch_size)
            z = keras.random.normal((config.batch_size, config.z_dim), seed=self.seed_generator)
            return gan_losses(self.discriminator, self.generator, x_real, z, training)

    return StackedMnistGAN()


def run_stacked_mnist_one(optimizer: str, seed: int, *,
                          config: StackedMnistConfig | str = "mlp-small",
                          classifier: Any = None, data: Any = None) -> dict[str, Any]:
    """Train a GAN on stacked MNIST with a registered optimizer; score it with
    :func:`stacked_mnist_modes`.

    Keras is seeded with ``seed`` (same initial weights for every optimizer), the model's noise
    stream too; after ``config.steps`` steps, ``config.n_samples`` images are generated with
    z ~ N(0, I) seeded by ``seed + 1`` and scored.

    Args:
      optimizer: a registry name (:mod:`tfgames.lab.experiments.registry`).
      seed: the run's seed.
      config: a :class:`StackedMnistConfig` or a key of :data:`STACKED_MNIST_CONFIGS`.
      classifier: the digit classifier; default :func:`tfgames.lab.mnist.mnist_classifier`.
      data: the digits (:class:`tfgames.lab.mnist.MnistData`); default
        ``load_mnist("auto", split=config.digits)``.

    Returns:
      The row: protocol, optimizer, seed, config, modes, reverse KL, mode counts (list),
      n_samples, whether the samples were finite, the final losses, wall seconds of training
      and of scoring, and the first 100 samples as uint8 (``"samples"``, (100, 28, 28, 3)).
    """
    import keras
    import tensorflow as tf

    from tfgames.datasets import step_dataset
    from tfgames.lab import mnist
    from tfgames.lab.experiments import registry

    config = STACKED_MNIST_CONFIGS[config] if isinstance(config, str) else config
    data = mnist.load_mnist("auto", split=config.digits) if data is None else data
    classifier = mnist.mnist_classifier() if classifier is None else classifier
    keras.utils.set_random_seed(seed)
    model = _stacked_mnist_gan(config, data.images[..., 0], seed)
    model.compile(optimizer=registry.make_optimizer(optimizer, config.learning_rate))
    start = time.time()
    history = model.fit(step_dataset(config.steps), epochs=1, verbose=0)
    wall = time.time() - start
    z = tf.random.stateless_normal((config.n_samples, config.z_dim), seed=[seed + 1, 0])
    flat = np.asarray(model.generator.predict(z, batch_size=1024, verbose=0), np.float32)
    images = flat.reshape(-1, 28, 28, 3)
    finite = bool(np.all(np.isfinite(images)))
    start = time.time()
    scores = stacked_mnist_modes(np.nan_to_num(images), classifier, n_samples=config.n_samples)
    return {
        "protocol": scores["protocol"],
        "optimizer": optimizer,
        "seed": int(seed),
        "config": dataclasses.asdict(config),
        "modes": scores["modes"],
        "reverse_kl": scores["reverse_kl"],
        "mode_counts": scores["mode_counts"].tolist(),
        "n_samples": scores["n_samples"],
        "finite": finite,
        "final_losses": {k: float(v[-1]) for k, v in history.history.items()},
        "wall_seconds": wall,
        "score_seconds": time.time() - start,
        "samples": np.round(np.nan_to_num(images[:100]) * 255).astype(np.uint8),
    }


def run_stacked_mnist_seeds(optimizers: Sequence[str], seeds: Sequence[int], *,
                            config: StackedMnistConfig | str = "mlp-small",
                            out: str | os.PathLike | None = None, resume: bool = True,
                            classifier: Any = None, data: Any = None) -> list[dict[str, Any]]:
    """:func:`run_stacked_mnist_one` for every optimizer and seed, as :func:`run_seeds`: one
    JSON file per run in ``out`` (``stacked-mnist__<config>__<optimizer>__seed<s>.json``, read
    instead of repeated when ``resume``) and the run's first 100 samples next to it (``.npz``,
    key ``samples``, uint8).

    Returns:
      The rows (without samples), in optimizer-then-seed order.
    """
    from tfgames.lab import mnist

    config = STACKED_MNIST_CONFIGS[config] if isinstance(config, str) else config
    loaded = {"data": data, "classifier": classifier}  # loaded once, on the first run needed

    def run(optimizer: str, seed: int) -> dict[str, Any]:
        if loaded["data"] is None:
            loaded["data"] = mnist.load_mnist("auto", split=config.digits)
        if loaded["classifier"] is None:
            loaded["classifier"] = mnist.mnist_classifier()
        return run_stacked_mnist_one(optimizer, seed, config=config,
                                     classifier=loaded["classifier"], data=loaded["data"])

    return _resumable_rows(out, "stacked-mnist", config.name, optimizers, seeds, resume, run)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _stats(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, standard deviation ddof=1, standard error = std / sqrt(n)); NaN where undefined
    (all three for n = 0, the spread for n = 1).
    """
    n = values.size
    if n == 0:
        return (float("nan"),) * 3
    std = float(values.std(ddof=1)) if n > 1 else float("nan")
    return float(values.mean()), std, std / math.sqrt(n)


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean, standard deviation (ddof=1) and standard error over seeds, per (protocol, config,
    optimizer).

    PacGAN's Table 1 reports mean +- *standard error* over 10 trials; the tables here print
    both. Reverse KL is averaged over the seeds where it is defined; ``kl_undefined`` counts
    the others.

    Returns:
      One dict per group with ``protocol``, ``config``, ``optimizer``, ``seeds`` (count),
      ``modes``, ``high_quality_percent``, ``reverse_kl`` as (mean, std, standard error)
      triples and ``kl_undefined``.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        config = row["config"]["name"] if isinstance(row["config"], Mapping) else row["config"]
        groups.setdefault((row["protocol"], config, row["optimizer"]), []).append(row)
    out = []
    for (protocol, config, optimizer), members in groups.items():
        modes = np.array([m["modes"] for m in members], dtype=np.float64)
        hq = np.array([m.get("high_quality_share", np.nan) for m in members],
                      dtype=np.float64) * 100
        kl = np.array([np.nan if m["reverse_kl"] is None else m["reverse_kl"] for m in members],
                      dtype=np.float64)
        defined = kl[np.isfinite(kl)]
        out.append({
            "protocol": protocol, "config": config, "optimizer": optimizer,
            "seeds": len(members),
            "modes": _stats(modes),
            "high_quality_percent": _stats(hq),
            "reverse_kl": _stats(defined),
            "kl_undefined": int(kl.size - defined.size),
            "n_samples": sorted({int(m["n_samples"]) for m in members if "n_samples" in m}),
        })
    return out


def format_table(summary: Sequence[Mapping[str, Any]], *, published: bool = True) -> str:
    """A Markdown table of :func:`summarize`'s rows, one table per protocol, the protocol's name
    in the heading and in every row, cells "mean +- std (s.e. standard error)"; PacGAN's
    published rows (mean and standard error) are appended for reference.
    """
    from tfgames.lab.tables import markdown_table

    def cell(stats, digits):
        mean, std, se = stats
        if math.isnan(mean):
            return "n/a"
        return f"{mean:.{digits}f} +- {std:.{digits}f} (s.e. {se:.{digits}f})"

    def published_cell(value):
        if value is None:
            return "n/a"
        mean, se = value
        return f"{mean} (s.e. {se})"

    header = ["protocol", "method", "training config", "seeds", "modes", "high quality %",
              "reverse KL"]
    tables = []
    for protocol in dict.fromkeys(row["protocol"] for row in summary):
        p = PROTOCOLS.get(protocol)
        rows = [
            [protocol, row["optimizer"], row["config"], row["seeds"], cell(row["modes"], 2),
             cell(row["high_quality_percent"], 1), cell(row["reverse_kl"], 3)
             + (f" ({row['kl_undefined']} undefined)" if row["kl_undefined"] else "")]
            for row in summary if row["protocol"] == protocol
        ]
        if published:
            rows += [[protocol, ref["method"], "PacGAN's", ref.get("trials", 10),
                      published_cell(ref["modes"]),
                      published_cell(ref["hq"]), published_cell(ref["kl"])]
                     for ref in PUBLISHED.get(protocol, [])]
        if p is not None:
            modes, counts = p.modes, p.n_samples
        else:  # stacked-mnist: 1,000 modes, the sample counts of the rows
            modes = 1000 if protocol == "stacked-mnist" else "?"
            counts = "/".join(str(n) for n in sorted(
                {n for row in summary if row["protocol"] == protocol
                 for n in row.get("n_samples", [])})) or "?"
        tables.append(f"Protocol `{protocol}` ({modes} modes, {counts} samples evaluated)\n\n"
                      + markdown_table(header, rows))
    return "\n".join(tables)


def summarize_folder(folder: str | os.PathLike) -> str:
    """:func:`format_table` of every run file written by :func:`run_seeds` in ``folder``."""
    rows = [json.loads(f.read_text()) for f in sorted(Path(folder).glob("*__seed*.json"))]
    if not rows:
        raise ValueError(f"No run files (*__seed*.json) in {os.fspath(folder)!r}.")
    return format_table(summarize(rows))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfgames.lab.protocols run|summarize|list``."""
    from tfgames_cli import protocols_parser

    parser = protocols_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        for p in PROTOCOLS.values():
            print(f"{p.name}: {p.modes} modes, std {p.std}, {p.n_samples} samples; {p.source}")
        return 0
    if args.command == "summarize":
        print(summarize_folder(args.folder))
        return 0
    from tfgames.lab.experiments.registry import resolve_optimizer_names

    config = TRAINING_CONFIGS[args.config]
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps,
                                     name=f"{config.name}-{args.steps}steps")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    for optimizer in resolve_optimizer_names(args.optimizers):
        for seed in seeds:  # one at a time so that progress is visible and files appear early
            row = run_seeds(args.protocol, [optimizer], [seed], config=config, out=args.out)[0]
            print(f"{args.protocol} {config.name} {optimizer} seed {seed}: modes {row['modes']}, "
                  f"hq {row['high_quality_share']:.3f}, reverse KL {row['reverse_kl']}, "
                  f"{row['wall_seconds']:.0f} s", flush=True)
    print(summarize_folder(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
