# Two commands matter: `make demo` (the whole loop on the embedded default) and `make test`.
# Each creates .venv and installs the project into it when missing or out of date.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench bench-quick services clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/python scripts/demo.py

services:
	scripts/services.sh

# The fault suite's notice storm writes its counts to var/faults-report.json; bench-quick reuses them.
test: install services
	rm -f var/faults-report.json
	mkdir -p var
	FAULTS_REPORT=$(CURDIR)/var/faults-report.json $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every scenario against the sandbox, each figure beside its target (bench/report.py):
# `make bench` writes the committed bench/report.json and bench/report.md (~8 minutes);
# `make bench-quick` is CI's smoke run on smaller catalogs (~3-5 minutes), written under var/.
bench: install services
	$(BIN)/python bench/report.py --out bench/report.json

bench-quick: install services
	BENCH_FAULTS_FROM=$(CURDIR)/var/faults-report.json \
		$(BIN)/python bench/report.py --quick --out var/bench/report-quick.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
