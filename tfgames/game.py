"""A differentiable game: players, their parameters and the loss each one minimises.

A game with n players (Balduzzi et al., "The Mechanics of n-Player Differentiable Games",
ICML 2018) is a set of parameter blocks w_1, ..., w_n and losses l_1(w), ..., l_n(w); player i
controls w_i and minimises l_i. A zero-sum game has l_1 = f and l_2 = -f: the second player
maximises f. :func:`zero_sum` writes that explicitly.

:class:`Game` binds the players' variables to a zero-argument loss callable for one training
step. Game optimizers (:mod:`tfgames.optimizers`) receive a :class:`Game` and ask it for the
simultaneous gradient and the Jacobian-vector products (:mod:`tfgames.products`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import keras
import tensorflow as tf

from tfgames import products

__all__ = [
    "Game",
    "PlayerSpec",
    "inexact_layers",
    "mismatched_names",
    "resolve_players",
    "zero_sum",
]

PlayerSpec = keras.layers.Layer | keras.Variable | tf.Variable | Sequence


def zero_sum(value: tf.Tensor, *, min_player: str, max_player: str) -> dict[str, tf.Tensor]:
    """Losses of the zero-sum game min_{w_min} max_{w_max} f: l_min = f, l_max = -f.

    Args:
      value: the scalar payoff f.
      min_player: the player that minimises f.
      max_player: the player that maximises f (its loss is -f).

    Returns:
      ``{min_player: f, max_player: -f}``.
    """
    if min_player == max_player:
        raise ValueError(
            "A zero-sum game needs two different players. "
            f"Received: min_player={min_player!r}, max_player={max_player!r}."
        )
    return {min_player: value, max_player: -value}


def mismatched_names(expected: Iterable[str], received: Iterable[str]
                     ) -> tuple[list[str], list[str]]:
    """``(missing, unexpected)``: expected names not received, received names not expected."""
    expected, received = list(expected), list(received)
    return ([n for n in expected if n not in received],
            [n for n in received if n not in expected])


def _variables_of(name: str, spec: PlayerSpec) -> list:
    if isinstance(spec, keras.layers.Layer):
        if not spec.built:
            raise ValueError(
                f"Player {name!r}: layer {spec.name!r} is not built, so it has no variables "
                "yet. Build it before training: give it an input shape (keras.Input) or call "
                "it once on a batch."
            )
        return list(spec.trainable_variables)
    if isinstance(spec, (keras.Variable, tf.Variable)):
        return [spec] if getattr(spec, "trainable", True) else []
    if isinstance(spec, (list, tuple)):
        out: list = []
        for item in spec:
            out.extend(_variables_of(name, item))
        return out
    raise TypeError(
        f"Player {name!r} must be a Keras layer or model, a variable, or a list of those. "
        f"Received: an object of type {type(spec).__name__}."
    )


def _layers_of(spec: PlayerSpec) -> list[keras.layers.Layer]:
    """Every layer inside a player spec (the layer itself and all its sub-layers)."""
    if isinstance(spec, keras.layers.Layer):
        return list(spec._flatten_layers(include_self=True, recursive=True))
    if isinstance(spec, (list, tuple)):
        return [layer for item in spec for layer in _layers_of(item)]
    return []


def _seed_states(layers: Sequence[keras.layers.Layer]) -> list[keras.Variable]:
    """The state variables of the layers' own ``keras.random.SeedGenerator``s (Dropout's,
    GaussianNoise's, a model's ``seed_generator``...).
    """
    states, seen = [], set()
    for layer in layers:
        for generator in getattr(layer, "_seed_generators", ()):
            if id(generator.state) not in seen:
                seen.add(id(generator.state))
                states.append(generator.state)
    return states


def inexact_layers(players: Mapping[str, PlayerSpec]) -> list[str]:
    """Layers of the players whose second derivatives tfgames cannot make exact, as
    ``"name (why)"``: BatchNormalization with ``renorm=True`` (its corrections are
    ``stop_gradient``-ed by definition, so even its first derivatives are not those of the
    function it computes) and SpectralNormalization (power iteration through
    ``stop_gradient``); normalisation layers too if this Keras' moments cannot be replaced
    (:data:`tfgames.products.EXACT_MOMENTS_AVAILABLE`).
    """
    out = []
    for spec in players.values():
        for layer in _layers_of(spec):
            renorm = getattr(layer, "renorm", False)  # Keras 3.10 has no `renorm` attribute
            if isinstance(layer, keras.layers.BatchNormalization) and renorm:
                out.append(f"{layer.name} (BatchNormalization with renorm=True)")
            elif isinstance(layer, keras.layers.SpectralNormalization):
                out.append(f"{layer.name} (SpectralNormalization)")
            elif not products.EXACT_MOMENTS_AVAILABLE and isinstance(layer, (
                keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                keras.layers.GroupNormalization,
            )):
                out.append(f"{layer.name} ({type(layer).__name__}: this Keras version's "
                           "moments could not be replaced)")
    return out


def xla_unsupported_layers(players: Mapping[str, PlayerSpec]) -> list[str]:
    """Recurrent layers of the players that are not unrolled (``keras.layers.RNN`` and the
    LSTM, GRU and SimpleRNN built on it), as ``"name (Type, unroll=False)"``: their second
    derivatives are exact without XLA, and XLA cannot compile them.
    """
    return [f"{layer.name} ({type(layer).__name__}, unroll=False)"
            for spec in players.values() for layer in _layers_of(spec)
            if isinstance(layer, keras.layers.RNN) and not getattr(layer, "unroll", False)]


def _in_xla_context() -> bool:
    """Whether the graph being traced is for XLA (``tf.function(jit_compile=True)``, Keras'
    ``jit_compile``).
    """
    from tensorflow.python.ops import control_flow_util  # no public equivalent

    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def resolve_players(players: Mapping[str, PlayerSpec]) -> dict[str, list]:
    """``{name: layer | variable | [..]}`` -> ``{name: [trainable variables]}``, validated.

    Raises:
      ValueError: no players; a player without trainable variables; a variable owned by two
        players; a non-float variable.
    """
    if not isinstance(players, Mapping) or not players:
        raise ValueError(
            "A game needs a non-empty mapping {player name: layer, model or variables}. "
            f"Received: {players!r}."
        )
    resolved: dict[str, list] = {}
    owner: dict[int, str] = {}
    for name, spec in players.items():
        if not isinstance(name, str):
            raise TypeError(f"Player names must be strings. Received: {name!r}.")
        variables = _variables_of(name, spec)
        if not variables:
            raise ValueError(
                f"Player {name!r} has no trainable variables: it could never move. Give it "
                "a built layer or trainable variables, or remove it from the game."
            )
        for v in variables:
            dtype = tf.as_dtype(v.dtype)
            if not dtype.is_floating:
                raise TypeError(
                    f"Player {name!r} owns variable {v.name!r} of dtype {dtype.name}; game "
                    "optimizers differentiate every variable, so they must be floating "
                    "point. Make it non-trainable or a float variable."
                )
            key = id(v)
            if key in owner and owner[key] != name:
                raise ValueError(
                    f"Variable {v.name!r} is owned by two players, {owner[key]!r} and "
                    f"{name!r}. Each variable must belong to exactly one player: share "
                    "layers through a separate player or make one copy non-trainable."
                )
            if key in owner:
                raise ValueError(
                    f"Player {name!r} lists variable {v.name!r} twice; its update would be "
                    "applied twice per step. List each variable (or the layer holding it) "
                    "once."
                )
            owner[key] = name
        resolved[name] = variables
    return resolved


class Game:
    """One step's view of a game: players' variables and a callable returning their losses.

    The losses are ``loss_fn() -> {player: scalar l_i}``; each player minimises its own. All
    evaluations of one :class:`Game` reuse the same random noise: the state of the given
    ``seed_generator`` and of every ``keras.random.SeedGenerator`` owned by the players'
    layers (e.g. ``Dropout``'s, seeded or not) is rewound before each re-evaluation, so that
    xi and the Hessian-vector products of one step refer to the same sample and masks;
    :meth:`fresh_noise` lets the next evaluation draw new noise (e.g. for extragradient's
    second evaluation with fresh noise). Randomness from other sources: see
    :func:`tfgames.products.game_products` (forward mode replays every Keras seed generator
    and refuses TensorFlow's stateful random ops).

    Under a ``tf.distribute`` strategy each replica evaluates the losses on its share of the
    global batch; ``loss_scale`` (b_r / B, this replica's b_r examples of the global batch's B,
    so ``1 / num_replicas_in_sync`` for even batches; see ``GameModel.make_game``) makes the sum
    over replicas of the per-replica gradients equal the global-batch gradient, also for uneven
    and empty final batches.

    Args:
      players: ``{name: layer | model | variable | [variables]}`` in a fixed order.
      loss_fn: zero-argument callable returning ``{name: scalar loss}`` with the same keys.
      seed_generator: the generator the loss function draws its noise from, if any.
      loss_scale: factor applied to the losses before differentiation, kept in the results
        (this replica's share b_r / B of the global batch under a strategy: a float or a
        scalar tensor).
      numeric_scale: factor applied to the losses before differentiation and divided out of
        xi, H v and H^T v: the dynamic loss scale of mixed-float16 training, which keeps
        float16 intermediate gradients from underflowing without changing the results.
    """

    def __init__(
        self,
        players: Mapping[str, PlayerSpec],
        loss_fn: Callable[[], Mapping[str, tf.Tensor]],
        *,
        seed_generator: keras.random.SeedGenerator | None = None,
        loss_scale: float = 1.0,
        numeric_scale: float | tf.Tensor = 1.0,
    ) -> None:
        self.players = resolve_players(players)
        self.variables = [v for vs in self.players.values() for v in vs]
        self._loss_fn = loss_fn
        self._seed_generator = seed_generator
        self._seed_snapshot = None
        self._layers = {id(l): l for spec in players.values() for l in _layers_of(spec)}
        self._player_specs = dict(players)
        own = [seed_generator.state] if seed_generator is not None else []
        self._random_states = own + [
            s for s in _seed_states(list(self._layers.values())) if all(s is not o for o in own)
        ]
        self.loss_scale = loss_scale
        self.numeric_scale = numeric_scale
        self.evaluations = 0
        self.last_losses: dict[str, tf.Tensor] | None = None

    @property
    def player_names(self) -> list[str]:
        """Player names in the game's order (the order of xi's blocks)."""
        return list(self.players)

    def fresh_noise(self) -> None:
        """Let the next evaluation draw new noise instead of replaying this step's."""
        self._seed_snapshot = None

    def check_exact(self) -> None:
        """Raise if a player's layer has second derivatives tfgames cannot make exact
        (:func:`inexact_layers`), or, inside an XLA-compiled function, a player has a recurrent
        layer that is not unrolled (:func:`xla_unsupported_layers`); second-order optimizers
        call it while their step is traced, before any state changes.
        """
        bad = inexact_layers(self._player_specs)
        if bad:
            raise ValueError(
                "Second-order game optimizers (SGA, consensus, ...) need exact second "
                f"derivatives of the losses, which these layers do not have: {bad}. Use "
                "BatchNormalization(renorm=False), LayerNormalization or no normalisation in "
                "those players, or train with a first-order optimizer (e.g. "
                "tfgames.Extragradient or a per-player keras.optimizers.Adam)."
            )
        rnns = xla_unsupported_layers(self._player_specs)
        if rnns and not tf.executing_eagerly() and _in_xla_context():
            raise ValueError(
                "Second-order game optimizers differentiate the losses twice, and XLA cannot "
                "compile the second gradient of a recurrent layer's while_loop (TensorFlow: "
                "\"... while_grad_grad ... must be a compile-time constant\"). These players' "
                f"layers are not unrolled: {rnns}. Build them with unroll=True, or compile "
                "without XLA (model.compile(..., jit_compile=False)); both are exact."
            )

    def _checked_losses(self) -> dict[str, tf.Tensor]:
        if self._random_states:
            if self._seed_snapshot is None:
                self._seed_snapshot = [tf.identity(s.value) for s in self._random_states]
            else:
                # Re-evaluations replay the first one's noise. The first evaluation reads the
                # states themselves: making it read the snapshot too lets tf.function share
                # the noise-dependent forward pass between forward mode's two passes, but then
                # forward-mode SGA is no longer bitwise repeatable from run to run on CPU (TF
                # 2.21; tests/test_experiments.py::test_forward_mode_sga_is_bitwise_repeatable).
                for state, snapshot in zip(self._random_states, self._seed_snapshot):
                    state.assign(snapshot)
        losses = self._loss_fn()
        if not isinstance(losses, Mapping):
            raise TypeError(
                "The loss function must return a dict {player name: scalar loss}. "
                f"Received: an object of type {type(losses).__name__}."
            )
        missing, extra = mismatched_names(self.players, losses)
        if missing or extra:
            raise ValueError(
                f"The losses must have exactly one entry per player {list(self.players)}. "
                f"Missing: {missing}; unexpected: {extra}. Return {{player: loss}} for every "
                "declared player (use tfgames.zero_sum for a min-max payoff)."
            )
        out = {}
        for name in self.players:
            if losses[name] is None:
                raise ValueError(
                    f"The loss of player {name!r} is None. compute_losses must return a scalar "
                    "tensor for every player: check that the function returns the value it "
                    "computes (a missing `return`) and does not leave a player out."
                )
            loss = tf.convert_to_tensor(losses[name])
            if loss.shape.rank != 0:
                raise ValueError(
                    f"The loss of player {name!r} must be a scalar. Received: shape "
                    f"{loss.shape}. Reduce it, e.g. with tf.reduce_mean."
                )
            if loss.dtype in (tf.float16, tf.bfloat16):  # mixed precision: reduce in float32
                loss = tf.cast(loss, tf.float32)
            out[name] = loss
        self.evaluations += 1
        self.last_losses = out
        factor = self._factor()
        if factor is not None:
            return {k: v * tf.cast(factor, v.dtype) for k, v in out.items()}
        return out

    def _factor(self):
        """loss_scale * numeric_scale, or None when it is exactly 1."""
        # loss_scale is a tensor under a strategy: this replica's share of the global batch.
        unit = isinstance(self.loss_scale, (int, float)) and self.loss_scale == 1.0
        if isinstance(self.numeric_scale, (int, float)) and self.numeric_scale == 1.0:
            return None if unit else self.loss_scale
        return self.loss_scale * tf.cast(self.numeric_scale, tf.float32)

    def _unscale(self, tensors):
        """Divide out ``numeric_scale`` (products of scaled losses are scaled linearly)."""
        if tensors is None or (
            isinstance(self.numeric_scale, (int, float)) and self.numeric_scale == 1.0
        ):
            return tensors
        return [t / tf.cast(self.numeric_scale, t.dtype) for t in tensors]

    def losses(self) -> dict[str, tf.Tensor]:
        """Evaluate and validate the players' losses once (unscaled, as reported)."""
        self._checked_losses()
        return dict(self.last_losses)

    def gradient(self) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        """``(losses, xi)``: one evaluation of the losses and the simultaneous gradient."""
        losses, xi = products.simultaneous_gradient(self._checked_losses, self.players)
        return losses, self._unscale(xi)

    def products(
        self,
        vector: Sequence[tf.Tensor] | None = None,
        *,
        hv: bool = True,
        htv: bool = True,
        mode: products.HvpMode = "forward",
        vector_fn=None,
    ) -> products.GameProducts:
        """xi, H v and H^T v (see :func:`tfgames.products.game_products`).

        Raises:
          ValueError: a player has a layer whose second derivatives cannot be made exact
            (:meth:`check_exact`), before anything is evaluated.
          tfgames.products.UnreplayableRandomnessError: ``mode="forward"`` on losses that use
            TensorFlow's stateful random ops.
        """
        if hv or htv:
            self.check_exact()
        vector_fn = vector_fn or (lambda xs: xs)
        p = products.game_products(
            self._checked_losses, self.players, vector, hv=hv, htv=htv, mode=mode,
            vector_fn=lambda xs: vector_fn(self._unscale(xs)),
        )
        return p._replace(xi=self._unscale(p.xi), hv=self._unscale(p.hv),
                          htv=self._unscale(p.htv))

    def split(self, flat: Sequence[tf.Tensor]) -> dict[str, list[tf.Tensor]]:
        """Cut a list aligned with :attr:`variables` into ``{player: [tensors]}``."""
        out, i = {}, 0
        for name, vs in self.players.items():
            out[name] = list(flat[i : i + len(vs)])
            i += len(vs)
        return out
