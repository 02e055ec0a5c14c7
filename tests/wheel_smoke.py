"""Run by ``make test-floors`` from outside the source tree, in an environment with the wheel
installed and no lab extra: ``import tfgames`` works without matplotlib/SciPy/mlxtend, and a
GameModel trains with SGA."""

import importlib.util
import pathlib
import sys

import keras

import tfgames

source_tree = pathlib.Path(__file__).resolve().parents[1]
installed = pathlib.Path(tfgames.__file__).resolve()
assert source_tree not in installed.parents, f"tfgames imported from the source tree: {installed}"
missing = [m for m in ("matplotlib", "mlxtend") if importlib.util.find_spec(m) is None]
assert missing == ["matplotlib", "mlxtend"], f"lab dependencies installed: {missing}"

model = tfgames.games.Bilinear()
model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.1)))
model.fit(tfgames.datasets.step_dataset(300), epochs=1, verbose=0)
distance = model.distance_to_equilibrium()
assert distance < 1e-3, distance
print(f"wheel {tfgames.__version__} from {installed.parent}: SGA on x*y ends {distance:.2e} "
      f"from the equilibrium (Python {sys.version.split()[0]}, TensorFlow "
      f"{__import__('tensorflow').__version__}, Keras {keras.__version__})")
