# One entry point for set-up and every job. Each target creates .venv and installs the
# package with what it needs on first use, so a fresh clone needs nothing else.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[lab,test,docs,examples]"
	touch $(STAMP)

.PHONY: install run test test-slow test-floors lint docs bench
install: $(STAMP)

run: $(STAMP)  ## main job: the quick 4x4-grid comparison, figures and metrics in runs/quick
	$(BIN)/tfgames run mog --preset quick --out runs/quick

lint: $(STAMP)  ## ruff (configuration in pyproject.toml)
	$(BIN)/ruff check tfgames tfgames_cli.py tests examples benchmarks

test: $(STAMP) lint  ## lint, the default test run (CI, two pytest workers) and the strict docs build
	# exit code 5 is pytest's "no tests collected": not a failure of the project
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile || [ $$? -eq 5 ]
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

test-slow: $(STAMP)  ## long convergence runs
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -p no:cacheprovider -m slow -n 2 --dist loadfile || [ $$? -eq 5 ]

# The declared minimum versions (setup.cfg install_requires) in their own environment, on the
# core's tests (no lab extra): keeps the floors honest. Not part of CI's default run.
FLOORS := .venv-floors
FLOOR_PINS := "tensorflow==2.16.2" "keras==3.10.0" "numpy==1.26.4"
CORE_TESTS := tests/test_products.py tests/test_products_exact.py tests/test_sga.py \
	tests/test_registry.py tests/test_game_model.py tests/test_library_layout.py
test-floors:
	$(PY) -m venv $(FLOORS)
	$(FLOORS)/bin/pip install -q $(FLOOR_PINS) "pytest>=7"
	rm -rf dist && $(FLOORS)/bin/pip wheel -q --no-deps -w dist .
	$(FLOORS)/bin/pip install -q --no-deps --force-reinstall dist/tfgames-*.whl
	cd /tmp && TF_CPP_MIN_LOG_LEVEL=2 $(CURDIR)/$(FLOORS)/bin/python $(CURDIR)/tests/wheel_smoke.py
	TF_CPP_MIN_LOG_LEVEL=2 $(FLOORS)/bin/python -m pytest -q -p no:cacheprovider $(CORE_TESTS)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/step_time.py --memory
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/first_order.py
