"""tfgames.matrix_games: NashConv against Nashpy's equilibria and a brute-force sum; optimizers
scored on matching pennies and rock-paper-scissors."""

import itertools

import keras
import numpy as np
import pytest

from tfgames import matrix_games as mg

nashpy = pytest.importorskip("nashpy")


def _random_simplex(rng, n):
    return rng.dirichlet(np.ones(n))


def _brute_force_nash_conv(payoffs, strategies):
    """sum_i max_a u_i(a, s_-i) - u_i(s), by summing over every pure action profile."""
    shape = payoffs[0].shape
    total = 0.0
    for i, u in enumerate(payoffs):
        value = 0.0
        deviation = np.zeros(shape[i])
        for profile in itertools.product(*[range(n) for n in shape]):
            p_others = np.prod([strategies[j][a] for j, a in enumerate(profile) if j != i])
            value += strategies[i][profile[i]] * p_others * u[profile]
            deviation[profile[i]] += p_others * u[profile]
        total += deviation.max() - value
    return total


@pytest.mark.parametrize("seed", range(20))
def test_zero_at_nashpy_equilibria_positive_elsewhere(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = rng.integers(2, 5, size=2)
    a, b = rng.normal(size=(n_rows, n_cols)), rng.normal(size=(n_rows, n_cols))
    # vertex enumeration: Nashpy's support enumeration misses equilibria of some random games
    # (it returned none for seed 19, with a "degenerate game" warning)
    equilibria = list(nashpy.Game(a, b).vertex_enumeration())
    assert len(equilibria) % 2 == 1, "a non-degenerate game has an odd number of equilibria"
    for x, y in equilibria:
        assert mg.bimatrix_nash_conv(a, b, x, y) < 1e-10
        assert mg.exploitability([a, b], [x, y]) < 1e-10
    for _ in range(5):
        x, y = _random_simplex(rng, n_rows), _random_simplex(rng, n_cols)
        value = mg.bimatrix_nash_conv(a, b, x, y)
        assert value > 1e-4
        np.testing.assert_allclose(value, _brute_force_nash_conv([a, b], [x, y]), rtol=1e-12)
    # a pure profile that is not among Nashpy's equilibria has positive NashConv
    for i, j in itertools.product(range(n_rows), range(n_cols)):
        x, y = np.eye(n_rows)[i], np.eye(n_cols)[j]
        is_equilibrium = any(np.allclose(x, e[0]) and np.allclose(y, e[1]) for e in equilibria)
        assert (mg.bimatrix_nash_conv(a, b, x, y) < 1e-12) == is_equilibrium


def test_three_players_against_brute_force():
    rng = np.random.default_rng(0)
    payoffs = [rng.normal(size=(2, 3, 4)) for _ in range(3)]
    strategies = [_random_simplex(rng, n) for n in (2, 3, 4)]
    np.testing.assert_allclose(mg.nash_conv(payoffs, strategies),
                               _brute_force_nash_conv(payoffs, strategies), rtol=1e-12)
    assert mg.exploitability(payoffs, strategies) == pytest.approx(
        mg.nash_conv(payoffs, strategies) / 3)


def test_known_values():
    uniform = np.ones(3) / 3
    assert mg.nash_conv([mg.ROCK_PAPER_SCISSORS, -mg.ROCK_PAPER_SCISSORS],
                        [uniform, uniform]) == pytest.approx(0.0, abs=1e-15)
    rock = np.array([1.0, 0.0, 0.0])
    # against pure rock, paper gains 1 over the uniform's 0; uniform vs rock: rock's best reply
    # to uniform gains 0 (all pure replies score 0 against uniform), so NashConv = 1 + 0.
    assert mg.nash_conv([mg.ROCK_PAPER_SCISSORS, -mg.ROCK_PAPER_SCISSORS],
                        [uniform, rock]) == pytest.approx(1.0)
    np.testing.assert_allclose(mg.regrets([mg.MATCHING_PENNIES, -mg.MATCHING_PENNIES],
                                          [[1.0, 0.0], [1.0, 0.0]]), [0.0, 2.0])


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"strategies\[1\] must lie on the probability simplex"):
        mg.nash_conv([np.eye(2), np.eye(2)], [[0.5, 0.5], [0.7, 0.7]])
    with pytest.raises(ValueError, match=r"strategies\[0\] must be a probability vector of shape"):
        mg.nash_conv([np.eye(2), np.eye(2)], [[1.0, 0.0, 0.0], [0.5, 0.5]])
    with pytest.raises(TypeError, match="one payoff tensor per player"):
        mg.nash_conv(np.eye(2), [[1.0, 0.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match="one non-empty axis per player"):
        mg.nash_conv([np.eye(2), np.ones((2, 3))], [[1.0, 0.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"`steps` must be an integer >= 1. Received: steps=0"):
        mg.train_and_score(mg.SoftmaxMatrixGame(mg.MATCHING_PENNIES),
                           keras.optimizers.SGD(0.1), steps=0)


def _optimizers():
    import tfgames
    from tfgames.optimizers.consensus import Consensus
    from tfgames.optimizers.extragradient import Extragradient
    from tfgames.optimizers.sga import SGA

    del tfgames
    return {
        "simultaneous GD": lambda: keras.optimizers.SGD(LEARNING_RATE),
        "SGA": lambda: SGA(keras.optimizers.SGD(LEARNING_RATE), lambda_=1.0),
        "Extragradient": lambda: Extragradient(keras.optimizers.SGD(LEARNING_RATE)),
        "Consensus": lambda: Consensus(keras.optimizers.SGD(LEARNING_RATE), gamma=1.0),
    }


# Initial logits away from the uniform equilibrium.
START = {
    "matching pennies": (mg.MATCHING_PENNIES, [1.0, -0.5], [-0.5, 0.8]),
    "rock-paper-scissors": (mg.ROCK_PAPER_SCISSORS, [1.0, -0.5, 0.2], [-0.5, 0.8, 0.0]),
}
LEARNING_RATE = 0.5
STEPS = 400


def score_table(games=tuple(START), steps=STEPS):
    """{game: {optimizer: (NashConv at step 0, at step `steps`)}}, SGD step LEARNING_RATE."""
    out = {}
    for game in games:
        payoff, row, column = START[game]
        out[game] = {}
        for name, build in _optimizers().items():
            model = mg.SoftmaxMatrixGame(payoff, row_logits=row, column_logits=column)
            trace = mg.train_and_score(model, build(), steps=steps, record_every=steps)
            out[game][name] = (trace[0], trace[-1])
    return out


def test_optimizers_on_matching_pennies():
    rows = score_table(["matching pennies"], steps=200)["matching pennies"]
    start, gd_end = rows["simultaneous GD"]
    # simultaneous GD spirals away from the mixed equilibrium
    assert gd_end > start, rows
    for name, factor in (("SGA", 1e-3), ("Consensus", 1e-2), ("Extragradient", 0.1)):
        first, last = rows[name]
        assert last < factor * first, (name, rows)


@pytest.mark.slow
def test_optimizers_on_both_games_docs_table():
    """The table of docs/evaluation.md (400 steps, SGD step 0.5)."""
    table = score_table()
    for game, rows in table.items():
        start, gd_end = rows["simultaneous GD"]
        assert gd_end > start, (game, rows)
        for name, factor in (("SGA", 1e-2), ("Consensus", 1e-2), ("Extragradient", 0.2)):
            first, last = rows[name]
            assert last < factor * first, (game, name, rows)


if __name__ == "__main__":  # prints the docs table
    for game, rows in score_table().items():
        for name, (first, last) in rows.items():
            print(f"| {game} | {name} | {first:.4f} | {last:.2e} |")
