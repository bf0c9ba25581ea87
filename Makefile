# One entry point per habit; CI runs the same commands. `make` alone lists the targets.
.DEFAULT_GOAL := help
.PHONY: help install dev lint format typecheck test slow unit integration functional e2e docs train lock

help: ## list the targets
	@grep -E '^[a-z0-9 -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## install the pinned runtime and the package
	pip install -r requirements.txt

dev: ## install the pinned dev tools too
	pip install -r requirements-dev.txt

lint: ## ruff lint and format check
	ruff check .
	ruff format --check .

typecheck: ## mypy on the package
	mypy src

test: ## every test but the slow ones
	pytest

slow: ## the slow checks (generated traffic, killed processes, real servers and clusters)
	pytest -m slow

unit integration functional e2e: ## one test level
	pytest -m $@

docs: ## build the documentation site, strictly (regenerates the configuration page first)
	python scripts/config_reference.py
	mkdocs build --strict

train: ## train on the shipped data with config.yaml
	python main.py train

lock: ## recompile requirements.txt and requirements-dev.txt from the .in files (pip-tools)
	bash scripts/lock.sh
