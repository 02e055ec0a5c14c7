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

.PHONY: install run test test-slow docs bench
install: $(STAMP)

run: $(STAMP)  ## main job: the quick 4x4-grid comparison, figures and metrics in runs/quick
	$(BIN)/tfgames run mog --preset quick --out runs/quick

test: $(STAMP)  ## default test run (CI) and the strict docs build
	# exit code 5 is pytest's "no tests collected": not a failure of the project
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -p no:cacheprovider || [ $$? -eq 5 ]
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q -d site

test-slow: $(STAMP)  ## long convergence runs
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -p no:cacheprovider -m slow || [ $$? -eq 5 ]

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/step_time.py --matmuls --inner --profile
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/first_order.py
