# The two commands a newcomer needs; see README.md.
PYTHON ?= python3
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
# MLflow 3 reads DO_NOT_TRACK only as "true"; this is its own switch.
export MLFLOW_DISABLE_TELEMETRY := true
CIFAR_SHARED ?= ../shared/data/cifar-10-batches-py

.PHONY: install install-test lock data run quick test test-fast lint mutation mutation-sample

# The versions CI tested: every pip install is held to requirements.lock (`make lock`).
LOCK := requirements.lock
PIP_INSTALL := $(PYTHON) -m pip install --quiet --disable-pip-version-check -c $(LOCK)

# pip runs once, and again only when pyproject.toml or the lock changes (stamps in .make/,
# git-ignored).
install: .make/installed
install-test: .make/installed-test

.make/installed: pyproject.toml $(LOCK)
	$(PIP_INSTALL) -e .
	@mkdir -p .make && touch $@

.make/installed-test: pyproject.toml $(LOCK)
	$(PIP_INSTALL) -e ".[test]"
	@mkdir -p .make && touch $@ .make/installed

# Re-resolve every extra (gpu and jax-cuda too) to today's newest releases for CI's Python
# and platform; then run make test and commit the lock. Needs uv (pip install uv).
lock:
	uv pip compile pyproject.toml --all-extras --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --upgrade -o $(LOCK)

# Link an existing copy of CIFAR-10 (offline machines); otherwise the first run downloads it.
data:
	@if [ ! -e data/01_raw/cifar-10-batches-py ] && [ -d "$(CIFAR_SHARED)" ]; then \
		ln -s "$$(cd "$(CIFAR_SHARED)" && pwd)" data/01_raw/cifar-10-batches-py; \
		echo "Linked $(CIFAR_SHARED) into data/01_raw/"; fi

run: install data
	kedro run

# The same pipelines on 10% of the real data for 2 epochs: about 2 minutes on a 2-core CPU.
quick: install data
	kedro run --env quick

lint:
	ruff check .
	ruff format --check .

# Both cores: the tests that read one session's tracked runs share a worker (loadgroup).
test: install-test lint
	$(PYTHON) -m pytest -n 2 --dist loadgroup

# The inner loop: every node, dataset, hook and the schema, without the tests that drive
# kedro, a browser or a notebook in subprocesses (78 s on both of 2 cores).
test-fast: install-test
	$(PYTHON) -m pytest -m "not slow" -n 2

# Mutation testing of the core with the fast tier ([tool.mutmut] in pyproject.toml), from
# scratch, then the score of each module (tests/MUTATION.md lists the equivalent mutants).
# Not in CI: about 3 hours on 2 cores. `mutmut run` alone resumes a stopped run;
# `mutmut show <mutant>` prints one mutation, `mutmut run "<module>*"` retries some.
mutation:
	rm -rf mutants
	mutmut run
	$(PYTHON) tests/mutation_score.py

# The same on a seeded random tenth of every module's mutants. The first `mutmut run`
# generates the mutants and maps tests to functions, then stops with an error that make
# ignores: no mutant has that name.
mutation-sample:
	rm -rf mutants
	-mutmut run "alexnet_cifar10.none" > /dev/null 2>&1
	mutmut run $$($(PYTHON) tests/mutation_score.py --sample 0.1 --names)
	$(PYTHON) tests/mutation_score.py --sample 0.1
