# mnist-hpo — `make help` lists the targets.
PY      := .venv/bin/python
STAMP   := .venv/.installed
WORKERS ?= 1
ARGS    ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup data test test-all study-ae worker reliability dashboard clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project (skipped when pyproject.toml is unchanged)

data: $(STAMP) ## fetch, check and cache MNIST under data/ (once; later runs load in <1 s)
	@$(PY) -m mnist_hpo data

test: data ## run the test suite (sets everything up on a fresh machine)
	$(PY) -m pytest -q $(PYTEST_ARGS)

study-ae: data ## the report's autoencoder study: 50 trials x 50 epochs, retrain best, export (WORKERS=N, ARGS=...)
	$(PY) -m mnist_hpo study ae --workers $(WORKERS) $(ARGS)

worker: data ## one more worker for a running study: make worker STUDY=ae STORAGE=postgresql+psycopg://user@host/db
	$(PY) -m mnist_hpo worker $(or $(STUDY),ae) $(if $(STORAGE),--storage $(STORAGE)) $(ARGS)

reliability: data ## the multi-worker and fault tests (PostgreSQL + SQLite), with the figures of RELIABILITY.md
	@mkdir -p storage
	@$(PY) -m pytest -q -s tests/test_workers.py tests/test_cli.py $(PYTEST_ARGS) > storage/reliability.log 2>&1; \
	  status=$$?; grep -E 'RELIABILITY|passed|failed|Error' storage/reliability.log; exit $$status

dashboard: $(STAMP) ## optuna-dashboard on storage/mnist_hpo.db at http://127.0.0.1:8080/
	$(PY) -m mnist_hpo dashboard $(ARGS)

clean: ## remove caches (keeps .venv, data/ and storage/)
	rm -rf .pytest_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
