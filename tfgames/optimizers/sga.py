"""Symplectic gradient adjustment (SGA)."""

from __future__ import annotations

from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as _tf_config  # is_op_determinism_enabled

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers import _blocks
from tfgames.optimizers.base import (
    GameOptimizer,
    all_reduce_sum,
    as_real,
    config_of,
    num_replicas,
    positional_hyperparameters,
)

__all__ = [
    "AUTO_HVP_MODE",
    "HVP_MODES",
    "NORMALIZERS",
    "SGA",
    "resolve_hvp_mode",
    "sga_adjustment",
]

NORMALIZERS = ("scalars", "tensors")

#: What ``hvp_mode="auto"`` computes H xi with, by the type of device the variables live on.
#: CPU, measured (``benchmarks/step_time.py``; docs/optimizers/second-order.md#step-time): on
#: the path users run (noise drawn inside ``compute_losses``), the double-backward trick
#: executes 262 matrix products per step on the seed's depth-6 GAN where forward mode executes
#: 350 (forward mode replays the noise, so its noise-dependent forward pass runs twice), it
#: evaluates the losses once (nothing random to replay) and its fastest repetitions were the
#: faster ones. Other devices: not measured yet (``benchmarks/gpu_step_time.py`` measures both
#: modes, XLA on and off); double backward too, for the same two reasons.
AUTO_HVP_MODE = {"CPU": "double_backward"}
_AUTO_HVP_MODE_ELSEWHERE = "double_backward"
HVP_MODES = ("auto",) + tuple(products.HVP_MODES)


def _device_type(variables) -> str:
    """The type of the device the first variable lives on ("CPU", "GPU", ...); without a
    known placement, "GPU" if TensorFlow sees one, else "CPU".
    """
    for v in variables:
        value = getattr(v, "value", v)
        device = getattr(value, "device", "") or ""
        if device:
            return tf.DeviceSpec.from_string(device).device_type or "CPU"
        break
    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def resolve_hvp_mode(hvp_mode: str, variables=()) -> str:
    """``hvp_mode`` itself, or for ``"auto"`` the mode of :data:`AUTO_HVP_MODE` for the type
    of device that ``variables`` live on (read when the train step is traced).

    With ``tf.config.experimental.enable_op_determinism()`` on, ``"auto"`` resolves to
    ``"forward"`` on every device: the double-backward step contains a three-input ``AddN``
    (from Grappler's merge of the products H xi shares with H^T xi) whose summation order
    TensorFlow's CPU kernel picks at run time, so its last bits depend on thread scheduling,
    which op determinism does not cover (docs/migration.md, "Repeatability").
    """
    if hvp_mode != "auto":
        return hvp_mode
    if _tf_config.is_op_determinism_enabled():  # not exported under tf.config (TF 2.21)
        return "forward"
    return AUTO_HVP_MODE.get(_device_type(variables), _AUTO_HVP_MODE_ELSEWHERE)


def sga_adjustment(
    xi: list[tf.Tensor],
    hv: list[tf.Tensor],
    htv: list[tf.Tensor],
    *,
    lambda_: float,
    use_signs: bool,
    epsilon: float,
    normalizer: float,
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Twice the antisymmetric product, 2 A^T xi, and the aligned lambda of SGA.

        2 A^T xi = H^T xi - H xi,
        lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / normalizer + epsilon) * |lambda_0|

    (without alignment, lambda = lambda_0). Balduzzi et al. 2018, Letcher et al. 2019.

    The factor 1/2 of A^T xi = (H^T xi - H xi) / 2 is left to the caller, who folds it into a
    scalar (dir = xi + (lambda / 2) (2 A^T xi), ||A^T xi|| = ||2 A^T xi|| / 2) instead of
    scaling every tensor: one elementwise pass over the parameters fewer per step.

    Args:
      xi: the simultaneous gradient.
      hv: H xi.
      htv: H^T xi.
      lambda_: lambda_0.
      use_signs: apply sign alignment.
      epsilon: the alignment threshold epsilon.
      normalizer: d, the number of scalars (paper) or of variable tensors (seed/DeepMind).

    Returns:
      ``(2 A^T xi, lambda)``.
    """
    twice_at_xi = [ht - h for ht, h in zip(htv, hv)]
    if use_signs:
        mult = products.dot(xi, htv) * products.dot(twice_at_xi, htv)
        lam = tf.sign(mult / (2.0 * normalizer) + epsilon) * abs(lambda_)
    else:
        # in float64 games lambda stays float64 (a float32 constant would round it)
        lam = tf.constant(lambda_, tf.float64 if xi[0].dtype == tf.float64 else tf.float32)
    return twice_at_xi, lam


@keras.saving.register_keras_serializable(package="tfgames")
class SGA(GameOptimizer):
    """Symplectic gradient adjustment: w <- w - eta * inner(xi + lambda A^T xi).

        dir = xi + lambda * A^T xi,      A^T xi = (H^T xi - H xi) / 2,
        lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / d + epsilon) * |lambda_0|  (alignment)

    xi is the simultaneous gradient, H = d xi / d w the game Jacobian, A its antisymmetric part
    (:mod:`tfgames.products`). The direction is handed to ``inner_optimizer``, which applies
    its own update rule (the seed wraps RMSProp). ``lambda_`` is lambda_0; ``use_signs`` turns
    alignment on; ``epsilon`` is its threshold; d is the number of scalar parameters
    (``normalizer="scalars"``, the paper's formula) or of variable tensors
    (``normalizer="tensors"``, the DeepMind reference code and the seed; see
    :class:`tfgames.compat.v1.SymplecticOptimizer`). With ``lambda_=0`` the update is exactly
    the inner optimizer's step on xi.

    H xi is computed by the double-backward trick (``hvp_mode="double_backward"``: one
    evaluation of the losses, one forward pass and three backward passes) or in forward mode
    (``hvp_mode="forward"``: a ``tf.autodiff.ForwardAccumulator`` over a second evaluation of
    the losses at the same parameter tensors). The default ``hvp_mode="auto"`` picks one per
    device when the train step is traced (:data:`AUTO_HVP_MODE`): double backward on the CPU,
    where it measured faster on the path users run, and, until measured there, on other
    devices too. H^T xi is reverse-over-reverse. Without alignment (``use_signs=False``) in
    double-backward mode, only 2 A^T xi = H_o^T xi - H_o xi is needed (H_o: H without its
    symmetric diagonal blocks), and both come from the same single pass restricted to the
    paths between players (:func:`tfgames.products.off_diagonal_products`): fewer matrix
    products per step (docs/optimizers/second-order.md#step-time).

    Under ``tf.distribute``, xi is all-reduced first and the products use the global xi; the
    direction is exact for the global batch.

    Reported diagnostics: ``sga_lambda`` (lambda, whose sign is the alignment), ``xi_norm``
    (||xi||) and ``at_xi_norm`` (||A^T xi||).

    Args:
      inner_optimizer: Keras optimizer applying the adjusted direction, e.g.
        ``keras.optimizers.RMSprop(1e-4)``.
      lambda_: lambda_0 >= 0, the strength of the adjustment.
      use_signs: sign alignment (on by default).
      epsilon: alignment threshold, > 0.
      normalizer: ``"scalars"`` (default) or ``"tensors"``.
      hvp_mode: ``"auto"`` (default; see :func:`resolve_hvp_mode`), ``"double_backward"`` or
        ``"forward"``.
      name: the optimizer's name; ``None`` derives one from the class name.
      **kwargs: Keras' base optimizer arguments are refused: set them on the inner optimizer.

    References:
      Balduzzi, Racaniere, Martens, Foerster, Tuyls, Graepel. The Mechanics of n-Player
      Differentiable Games. ICML 2018. Letcher, Balduzzi, Racaniere, Martens, Foerster, Tuyls,
      Graepel. Differentiable Game Mechanics. JMLR 20(84), 2019.

    Example:
      >>> import keras, tfgames
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.1), lambda_=1.0))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> model.distance_to_equilibrium() < 1e-3  # gradient descent ends 6.29 away
      True
    """

    diagnostic_names = ("sga_lambda", "xi_norm", "at_xi_norm")

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *args: Any,
        lambda_: float = 1.0,
        use_signs: bool = True,
        epsilon: float = 0.1,
        normalizer: Literal["scalars", "tensors"] = "scalars",
        hvp_mode: Literal["auto", "forward", "double_backward"] = "auto",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Keyword-only since 0.2; 0.1's positional order still works, with a warning.
        given = positional_hyperparameters(
            "SGA", args, ("lambda_", "use_signs", "epsilon", "normalizer", "hvp_mode", "name"),
            dict(lambda_=lambda_, use_signs=use_signs, epsilon=epsilon, normalizer=normalizer,
                 hvp_mode=hvp_mode, name=name),
            dict(lambda_=1.0, use_signs=True, epsilon=0.1, normalizer="scalars",
                 hvp_mode="auto", name=None),
        )
        lambda_, use_signs, epsilon = given["lambda_"], given["use_signs"], given["epsilon"]
        normalizer, hvp_mode, name = given["normalizer"], given["hvp_mode"], given["name"]
        if as_real(lambda_) is None or as_real(lambda_) < 0:
            raise ValueError(
                "Argument `lambda_` must be a number >= 0 and finite (its sign is set by "
                f"alignment). Received: lambda_={lambda_!r}."
            )
        if as_real(epsilon) is None or as_real(epsilon) <= 0:
            raise ValueError(
                f"Argument `epsilon` must be > 0. Received: epsilon={epsilon!r}. Pass a "
                "finite positive number (Python or NumPy), e.g. epsilon=0.1."
            )
        if not isinstance(use_signs, (bool, np.bool_)):
            raise TypeError(
                f"Argument `use_signs` must be a bool. Received: use_signs={use_signs!r}."
            )
        if normalizer not in NORMALIZERS:
            raise ValueError(
                f"Argument `normalizer` must be one of {NORMALIZERS}. "
                f"Received: normalizer={normalizer!r}."
            )
        if hvp_mode not in HVP_MODES:
            raise ValueError(
                f"Argument `hvp_mode` must be one of {HVP_MODES}. "
                f"Received: hvp_mode={hvp_mode!r}."
            )
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.lambda_ = float(lambda_)
        self.use_signs = bool(use_signs)
        self.epsilon = float(epsilon)
        self.normalizer = normalizer
        self.hvp_mode = hvp_mode

    def direction(self, game: Game):
        if self.lambda_ == 0.0:
            losses, xi = game.gradient()
            zero = tf.zeros((), tf.float32)
            return losses, xi, {"sga_lambda": zero, "xi_norm": products.norm(xi),
                                "at_xi_norm": zero}
        mode = resolve_hvp_mode(self.hvp_mode, game.variables)
        if not self.use_signs and mode == "double_backward":
            # Without alignment only H^T xi - H xi = H_o^T xi - H_o xi is used (the diagonal
            # blocks H_ii are symmetric): the off-diagonal products through the same single
            # pass, restricted to the paths between players, execute fewer matrix products
            # (194 against 262 per step on benchmarks/step_time.py's depth-6 GAN).
            p = _blocks.off_diagonal_products(game)  # p.vector: the global xi
            hv, htv = p.ho_v, p.ho_t_v  # global H_o xi, H_o^T xi
        else:
            p = game.products(None, hv=True, htv=True, mode=mode, vector_fn=all_reduce_sum)
            # p.vector is the global xi; p.hv and p.htv are this replica's share of H xi,
            # H^T xi.
            hv, htv = all_reduce_sum(p.hv), all_reduce_sum(p.htv)
        if self.normalizer == "scalars":
            d = float(sum(int(np.prod(v.shape)) for v in game.variables))
        else:
            d = float(len(game.variables))
        twice_at_xi, lam = sga_adjustment(
            p.vector, hv, htv,
            lambda_=self.lambda_, use_signs=self.use_signs, epsilon=self.epsilon, normalizer=d,
        )
        scale = lam * (0.5 / num_replicas())  # lambda A^T xi, this replica's share
        direction = [x + tf.cast(scale, x.dtype) * a for x, a in zip(p.xi, twice_at_xi)]
        diagnostics = {
            "sga_lambda": tf.cast(lam, tf.float32),
            "xi_norm": products.norm(p.vector),
            "at_xi_norm": 0.5 * products.norm(twice_at_xi),
        }
        return p.losses, direction, diagnostics

    def resolved_hvp_mode(self, variables=()) -> str:
        """The mode H xi is computed with for ``variables`` (``hvp_mode``, ``"auto"`` resolved)."""
        return resolve_hvp_mode(self.hvp_mode, variables)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **config_of(
            self, ("lambda_", "use_signs", "epsilon", "normalizer", "hvp_mode"))}
