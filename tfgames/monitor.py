"""SampleMonitor: watch a generator's samples during ``fit`` (PNG files, TensorBoard images).

The keras.io GAN examples' ``GANMonitor`` pattern as a reusable callback: at the end of every
``every``-th epoch it generates samples from fixed noise with the model's
:meth:`tfgames.GameModel.generate` (so the same latent points are followed through training),
tiles them into one grid image and writes it as a PNG (``tf.io.encode_png``; no matplotlib)
and, with ``log_dir``, as a TensorBoard image summary.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["SampleMonitor", "image_grid"]


def image_grid(images: np.ndarray, ncols: int | None = None) -> np.ndarray:
    """Tile ``(n, h, w, c)`` images into one ``(rows * h, ncols * w, c)`` image.

    Args:
      images: a batch of images, channels last (c = 1, 3 or 4).
      ncols: images per row; default ``ceil(sqrt(n))``. Missing cells are left at 0.

    Returns:
      The grid, same dtype as ``images``.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or len(images) == 0:
        raise ValueError(
            "Argument `images` must be a non-empty batch of shape (n, height, width, channels) "
            f"with 1, 3 or 4 channels. Received: shape {images.shape}."
        )
    n, h, w, c = images.shape
    ncols = int(ncols) if ncols is not None else math.ceil(math.sqrt(n))
    if ncols < 1:
        raise ValueError(f"Argument `ncols` must be >= 1. Received: ncols={ncols}.")
    nrows = math.ceil(n / ncols)
    grid = np.zeros((nrows * ncols, h, w, c), dtype=images.dtype)
    grid[:n] = images
    grid = grid.reshape(nrows, ncols, h, w, c).swapaxes(1, 2)
    return grid.reshape(nrows * h, ncols * w, c)


class SampleMonitor(keras.callbacks.Callback):
    """Writes a grid of generated samples every ``every`` epochs (PNG and TensorBoard).

    At ``on_train_begin`` the noise is fixed (``noise``, or ``model.sample_noise(num_samples,
    seed=seed)``); at the end of epochs ``every``, ``2 * every``, ... it calls
    ``model.generate(noise=noise)`` (which runs the model's ``call``, e.g. the generator),
    maps the samples to images with ``to_image``, scales ``value_range`` to 0..255, tiles them
    with :func:`image_grid` and writes ``<directory>/epoch_<epoch, 1-based, 4 digits>.png``
    and, when ``log_dir`` is given, a TensorBoard image summary ``"samples"`` at step = epoch
    (1-based) under ``<log_dir>/samples``. Generating never moves the model's noise streams.

    Args:
      directory: folder for the PNG files (created); None writes no PNG.
      num_samples: how many samples (ignored when ``noise`` is given).
      noise: the generator's inputs to follow, instead of drawn noise.
      seed: seed of the drawn noise.
      every: write at the end of every ``every``-th epoch.
      to_image: maps the generated batch to images ``(n, h, w)`` or ``(n, h, w, c)``; default:
        the samples as they are.
      value_range: ``(low, high)`` of the images' values, mapped to 0..255 (values outside
        are clipped); ``(-1, 1)`` for tanh generators, ``(0, 1)`` (default) for sigmoid ones.
      ncols: images per grid row (default ``ceil(sqrt(n))``).
      log_dir: TensorBoard log folder (e.g. the one given to ``keras.callbacks.TensorBoard``).

    Example:
      >>> from tfgames.monitor import SampleMonitor
      >>> monitor = SampleMonitor("samples", num_samples=16, value_range=(-1, 1), every=5)
      >>> monitor.every, monitor.value_range
      (5, (-1.0, 1.0))
    """

    def __init__(
        self,
        directory: str | os.PathLike | None,
        *,
        num_samples: int = 16,
        noise: Any = None,
        seed: int | None = 0,
        every: int = 1,
        to_image: Callable[[np.ndarray], np.ndarray] | None = None,
        value_range: tuple[float, float] = (0.0, 1.0),
        ncols: int | None = None,
        log_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if directory is None and log_dir is None:
            raise ValueError(
                "SampleMonitor writes nothing with directory=None and log_dir=None. Pass a "
                "folder for PNG files, a TensorBoard log_dir, or both."
            )
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(
                f"Argument `every` must be an integer >= 1. Received: every={every!r}."
            )
        if noise is None and (
            isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer))
            or num_samples < 1
        ):
            raise ValueError(
                "Argument `num_samples` must be an integer >= 1. Received: "
                f"num_samples={num_samples!r}."
            )
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(
                "Argument `value_range` must be (low, high) with finite low < high. Received: "
                f"value_range={value_range!r}."
            )
        self.directory = None if directory is None else Path(directory)
        self.num_samples = int(num_samples)
        self.noise = noise
        self.seed = seed
        self.every = int(every)
        self.to_image = to_image
        self.value_range = (low, high)
        self.ncols = ncols
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._fixed_noise = None
        self._writer = None
        self.written: list[Path] = []

    def on_train_begin(self, logs=None) -> None:
        if self._fixed_noise is None:
            self._fixed_noise = (
                np.asarray(self.noise) if self.noise is not None
                else self.model.sample_noise(self.num_samples, seed=self.seed)
            )
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir / "samples"))

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every:
            return
        grid = self.grid()
        if self.directory is not None:
            path = self.directory / f"epoch_{epoch + 1:04d}.png"
            tf.io.write_file(str(path), tf.io.encode_png(grid))
            self.written.append(path)
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch + 1)
            self._writer.flush()

    def on_train_end(self, logs=None) -> None:
        if self._writer is not None:
            self._writer.flush()

    def grid(self) -> np.ndarray:
        """The current samples as one uint8 ``(H, W, c)`` grid image."""
        samples = np.asarray(self.model.generate(noise=self._fixed_noise))
        images = np.asarray(self.to_image(samples) if self.to_image is not None else samples)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(
                "SampleMonitor needs images of shape (n, height, width) or (n, height, width, "
                f"channels). Received: samples of shape {images.shape}. Pass `to_image` to "
                "turn the model's samples into images (e.g. a scatter or a reshape)."
            )
        low, high = self.value_range
        scaled = np.clip((images.astype(np.float64) - low) / (high - low), 0.0, 1.0)
        return image_grid(np.round(scaled * 255.0).astype(np.uint8), self.ncols)
