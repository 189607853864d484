# Two commands do all the set-up (see README.md, Quick start):
#   make demo   create .venv, install the pinned dependencies, run the pipeline on raw/sample
#   make test   create .venv if needed, install, run the test suite
#   make check-wheel   a wheel installed into a fresh venv runs the main commands outside the checkout
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install demo test check-wheel clean-warehouse

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/corpus run raw/sample

test: $(STAMP)
	$(BIN)/python -m pytest

check-wheel:
	scripts/check-wheel

clean-warehouse:
	rm -rf warehouse/catalog.sqlite* warehouse/catalog.url warehouse/data warehouse/staging warehouse/search warehouse/raw_hashes*.json warehouse/.run*.lock
