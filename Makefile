# mnist-hpo — `make help` lists the targets.
PY      := .venv/bin/python
STAMP   := .venv/.installed
WORKERS ?= 1
ARGS    ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup data test study-ae dashboard bench clean
.PHONY: study-dae study-clf explore report browser gan study-gan
.PHONY: worker reliability fashion reproduce syspkgs compare docs figures test-fast

# The Debian packages the tests need: chromium (headless browser tests) and Fashion-MNIST as IDX files.
SYSPKGS_MISSING ?= $(strip $(if $(wildcard /usr/bin/chromium),,chromium) \
                   $(if $(wildcard /usr/share/datasets/fashion-mnist),,dataset-fashion-mnist))
USER_ID ?= $(shell id -u)
# $(call apt_install,PACKAGES): install them as root; otherwise stop with one line naming them and the command
apt_install = $(if $(1),$(if $(filter-out 0,$(USER_ID)),$(error missing system packages: $(1); install them as root: sudo apt-get install -y $(1)),apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1)),true)

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,postgres,dashboard,docs]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project with its extras at the tested versions (constraints.txt; skipped when unchanged)

data: $(STAMP) ## fetch, check and cache MNIST once per user (~/.cache/mnist-hpo, or MNIST_HPO_DATA) and install the shipped Fréchet-distance classifier there (about 10 s once; later runs load in <1 s)
	@$(PY) -m mnist_hpo data

test: data syspkgs ## the import contract of the stages (lint-imports), ruff's lint and format checks, the type check (mypy), then the whole test suite, as CI does (sets everything up on a fresh machine; not root: says which system packages to install)
	.venv/bin/lint-imports
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The edit-test loop: no PostgreSQL, no chromium, no MNIST cache, no real training (pyproject.toml's markers).
FAST_MARKERS := not slow and not postgres and not browser and not mnist and not processes
test-fast: $(STAMP) ## lint-imports, ruff's lint and format checks and mypy, then the quick part of the suite: no PostgreSQL, chromium, MNIST cache, training or worker processes (about 40 s here)
	.venv/bin/lint-imports
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	$(PY) -m pytest -q -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

docs: $(STAMP) ## the documentation site into site/: the CLI reference regenerated from the parser, then mkdocs build --strict
	$(PY) tools/docs_cli.py
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

figures: ## copy the figures README and docs/ show from the record (results/) into docs/img/; screenshots need chromium
	$(PY) tools/docs_figures.py

reproduce: data ## every protocol of the report at full size into results/ (journals, exports, GAN, report); resumes (ARGS="--only ae,dae")
	$(PY) -m mnist_hpo reproduce $(ARGS)

study-ae: data ## the report's autoencoder study: 50 trials x 50 epochs, retrain best, export (WORKERS=N, ARGS=...)
	$(PY) -m mnist_hpo study ae --workers $(WORKERS) $(ARGS)

study-dae: data ## the report's denoising autoencoder study: 50 trials x 50 epochs, Gaussian noise (see mnist_hpo/studies/dae.toml), retrain best, export
	$(PY) -m mnist_hpo study dae --workers $(WORKERS) $(ARGS)

study-clf: data ## classifier on the latest 'ae' export's encoder: 216-point grid x 20 epochs, retrain best, export with confusion matrix
	$(PY) -m mnist_hpo study clf --workers $(WORKERS) $(ARGS)
explore: data ## latent space of the latest 'ae' export: Table 5, PCA/t-SNE 2-D/3-D, k-NN, new images (ARGS=...)
	$(PY) -m mnist_hpo explore $(ARGS)

report: $(STAMP) ## the reproduction report from the database and exports: storage/report.html + report.md (ARGS=...)
	$(PY) -m mnist_hpo report $(ARGS)

syspkgs: ## install the Debian packages the tests need (chromium, dataset-fashion-mnist) when missing; not root: say how
	@$(call apt_install,$(SYSPKGS_MISSING))

# With no ARGS: the record's three protocols (results/journals is committed, so this works on a fresh clone).
COMPARE_DEFAULT := ae ae-tpe ae-gp --journals results/journals
compare: $(STAMP) ## anytime curves by protocol, epochs/time to 0.0172: storage/compare.png (default: the record's ae, ae-tpe, ae-gp; ARGS="my-a my-b" for your own)
	$(PY) -m mnist_hpo compare $(or $(ARGS),$(COMPARE_DEFAULT))

browser: ## install Debian's chromium (headless browser tests) when it is missing
	@$(call apt_install,$(filter chromium,$(SYSPKGS_MISSING)))

fashion: ## install Debian's dataset-fashion-mnist (Fashion-MNIST as IDX files) when it is missing
	@$(call apt_install,$(filter dataset-fashion-mnist,$(SYSPKGS_MISSING)))

gan: data ## the report's GAN: 400 epochs, losses plot, image grids + GIF, checkpoints (resumes), Fréchet distance (ARGS=--epochs N ...)
	$(PY) -m mnist_hpo gan gan $(ARGS)

study-gan: data ## the GAN as a study: TPE over both lrs, dropout, slope, batch size; objective = Fréchet distance; export best
	$(PY) -m mnist_hpo study gan-search --workers $(WORKERS) $(ARGS)
worker: data ## one more worker for a running study: make worker STUDY=ae STORAGE=postgresql+psycopg://user@host/db
	$(PY) -m mnist_hpo worker $(or $(STUDY),ae) $(if $(STORAGE),--storage $(STORAGE)) $(ARGS)

reliability: data ## the multi-worker and fault tests (PostgreSQL, SQLite, journal), with the figures of RELIABILITY.md
	@mkdir -p storage
	@$(PY) -m pytest -q -s tests/hpo/test_workers.py tests/storages/test_faults.py tests/storages/test_pg_restart.py tests/test_cli.py tests/data/test_datasets.py tests/storages/test_journal.py tests/storages/test_compact.py tests/workflows/test_reproduce.py $(PYTEST_ARGS) > storage/reliability.log 2>&1; \
	  status=$$?; grep -E 'RELIABILITY|passed|failed|Error' storage/reliability.log; exit $$status

dashboard: $(STAMP) ## optuna-dashboard on storage/mnist_hpo.db at http://127.0.0.1:8080/
	$(PY) -m mnist_hpo dashboard $(ARGS)

bench: data ## speed benchmarks, side by side, medians (see BENCHMARKS.md; ~5 min)
	$(PY) benchmarks/bench.py $(ARGS)

clean: ## remove build and Python caches (keeps .venv, storage/ and the MNIST cache)
	rm -rf .pytest_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
