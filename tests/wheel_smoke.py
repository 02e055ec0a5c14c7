"""Run by ``make test-floors`` from outside the source tree, in an environment with the wheel
installed and no lab extra: ``import tfgames`` works without matplotlib/SciPy/mlxtend, and a
GameModel trains with SGA."""

import importlib.util
import pathlib
import subprocess
import sys
import sysconfig

import keras

import tfgames
import tfgames_cli

# The wheel's files, not the source tree's (the environment may itself lie inside the source
# tree, as make test-floors' .venv-floors does): they must come from its site-packages.
site_packages = pathlib.Path(sysconfig.get_paths()["purelib"]).resolve()
installed = pathlib.Path(tfgames.__file__).resolve()
assert site_packages in installed.parents, f"tfgames imported from {installed}, not {site_packages}"
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

# The console script is the wheel's top-level module tfgames_cli, which answers --help without
# importing TensorFlow (tests/test_cli_fast.py checks that part in the source tree).
assert site_packages in pathlib.Path(tfgames_cli.__file__).resolve().parents, tfgames_cli
help_text = subprocess.run([str(pathlib.Path(sys.executable).with_name("tfgames")), "--help"],
                           capture_output=True, text=True, check=True).stdout
assert help_text.startswith("usage: tfgames"), help_text
print(f"console script tfgames from {pathlib.Path(tfgames_cli.__file__).parent}: --help works")
