# dmpc: `make run` and `make test` set everything up on first use, then do their job.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP_DEPS := $(VENV)/.deps-stamp
STAMP_DEV := $(VENV)/.editable-stamp
PYTEST_ARGS ?=
# fixed shuffle of the test order (pytest-randomly), so that a CI run can be repeated exactly
RANDOM_SEED ?= 12345
# parallel test processes for the tests that start no ROS graph (pytest-xdist; "auto" = one per
# core, 0 = in this process); test/ros runs afterwards in one process, in file order. A part
# that PYTEST_ARGS leaves without tests (pytest exit code 5) is not a failure; both empty is.
TEST_JOBS ?= auto

.PHONY: setup build run test test-slow bench clean

setup: $(STAMP_DEV) build

$(STAMP_DEPS): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): $(STAMP_DEPS) setup.py
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $@

# Incremental CMake build of the compiled core into dmpc_core/ (quick when up to date).
build: $(STAMP_DEPS)
	$(PY) setup.py --quiet build_ext --inplace

# The main job: Ballbot Deep Value MPC (Algorithm 1) learning through the three ROS 2 nodes (sim, controller,
# learner) as separate processes over DDS on loopback; summary + PNGs in runs/main.
run: setup
	$(PY) -m dmpc_ros.main_job --config config/ballbot_sim.yaml --out runs/main

test: setup
	$(PY) -m pytest -q -m "not slow" -p randomly --randomly-seed=$(RANDOM_SEED) -n $(TEST_JOBS) \
		--ignore=test/ros $(PYTEST_ARGS); a=$$?; \
	$(PY) -m pytest -q -m "not slow" -p randomly --randomly-seed=$(RANDOM_SEED) -p no:xdist \
		test/ros $(PYTEST_ARGS); b=$$?; \
	ok() { test $$1 -eq 0 -o $$1 -eq 5; }; \
	ok $$a && ok $$b && ! test $$a -eq 5 -a $$b -eq 5

test-slow: setup
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b --quick || exit 1; done

clean:
	rm -rf build dmpc_core/_core*.so
