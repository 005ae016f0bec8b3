# The two commands a newcomer needs; see README.md.
PYTHON ?= python3
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
CIFAR_SHARED ?= ../shared/data/cifar-10-batches-py

.PHONY: install install-test data run test lint

install:
	$(PYTHON) -m pip install -e .

install-test:
	$(PYTHON) -m pip install -e ".[test]"

# Link an existing copy of CIFAR-10 (offline machines); otherwise the first run downloads it.
data:
	@if [ ! -e data/01_raw/cifar-10-batches-py ] && [ -d "$(CIFAR_SHARED)" ]; then \
		ln -s "$$(cd "$(CIFAR_SHARED)" && pwd)" data/01_raw/cifar-10-batches-py; \
		echo "Linked $(CIFAR_SHARED) into data/01_raw/"; fi

run: install data
	kedro run

lint:
	ruff check .
	ruff format --check .

test: install-test lint
	$(PYTHON) -m pytest
