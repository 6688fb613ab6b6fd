# mnist-hpo — `make help` lists the targets.
PY      := .venv/bin/python
STAMP   := .venv/.installed
WORKERS ?= 1
ARGS    ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup data test test-all study-ae dashboard clean
.PHONY: gan study-gan

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

gan: data ## the report's GAN: 400 epochs, losses plot, image grids + GIF, checkpoints (resumes), Fréchet distance (ARGS=--epochs N ...)
	$(PY) -m mnist_hpo gan gan $(ARGS)

study-gan: data ## the GAN as a study: TPE over both lrs, dropout, slope, batch size; objective = Fréchet distance; export best
	$(PY) -m mnist_hpo study gan-search --workers $(WORKERS) $(ARGS)

dashboard: $(STAMP) ## optuna-dashboard on storage/mnist_hpo.db at http://127.0.0.1:8080/
	$(PY) -m mnist_hpo dashboard $(ARGS)

clean: ## remove caches (keeps .venv, data/ and storage/)
	rm -rf .pytest_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
