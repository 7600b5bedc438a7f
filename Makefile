# pgcdc.clickpipes: the single entry point for building and testing.
#
#   make test             everything CI runs (stops at the first failure)
#   make demo             prepare, report and verify a throwaway PostgreSQL 15 (tools/demo.py)
#   make help             list the targets
#
# Works as root and as a normal user. Nothing is written outside the checkout
# except the work directory (`make workdir` prints it; PGCDC_WORKDIR overrides
# it), ~/.ansible/test (ansible-test's caches) and whatever
# tests/harness/pgcluster.py installs.
# PGCDC_VERBOSE=1 shows the output of every step instead of hiding it.

SHELL := /bin/bash
comma := ,
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory
.NOTPARALLEL:

# PostgreSQL majors for the integration tests.
MAJORS ?= 12 15 18
ALL_MAJORS := 12 13 14 15 16 17 18

# The Python that creates .venv (and runs the stdlib-only tools before it exists).
PYTHON := $(or $(shell command -v python3.11 2>/dev/null),$(shell command -v python3 2>/dev/null),python3)
ANSIBLE_TEST_PYTHON := 3.11

VENV := .venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
VPY := $(VENV_BIN)/python
VENV_STAMP := $(VENV)/.requirements-dev.txt

# Per-user, per-checkout work directory outside the repository.
WORK := $(shell $(PYTHON) tools/collection_path.py workdir)
ifeq ($(WORK),)
$(error tools/collection_path.py could not create the work directory (see the message above))
endif
BUILD_DIR := $(WORK)/build

export PGCDC_LOG_DIR := $(WORK)/logs
# Every recipe finds the venv's ansible, ansible-test, ansible-lint, pytest first.
export PATH := $(VENV_BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# ansible-core 2.19 (ansible/_internal/_ssh/_ssh_agent.py) imports cryptography's DSA module, and cryptography 51
# deprecates DSA: every Ansible command would print that CryptographyDeprecationWarning. Only that warning is hidden
# (a Python warnings filter on its text); Ansible's [WARNING] lines and the collection's own warnings stay.
export PYTHONWARNINGS := $(if $(PYTHONWARNINGS),$(PYTHONWARNINGS)$(comma))ignore:DSA is deprecated:UserWarning

QUIET := tools/quiet
# In a recipe: export ANSIBLE_COLLECTIONS_PATH pointing at this checkout.
WITH_COLLECTIONS = export ANSIBLE_COLLECTIONS_PATH="$$($(PYTHON) tools/collection_path.py collections)";

TEST_STEPS := venv postgres sanity units integration molecule lint build changelog-lint

.PHONY: help venv _venv postgres collection-path workdir sanity units integration molecule lint build \
	changelog-lint test test-all-majors invariants ansible-versions demo bench clean

help:
	@echo 'make test             $(TEST_STEPS)'
	@echo 'make venv             create/refresh .venv from requirements-dev.txt'
	@echo 'make postgres         install PostgreSQL $(MAJORS), pgbouncer and the client (MAJORS="...")'
	@echo 'make collection-path  print a value for ANSIBLE_COLLECTIONS_PATH (outside the repo)'
	@echo 'make sanity           ansible-test sanity --python $(ANSIBLE_TEST_PYTHON) (no ignore files)'
	@echo 'make units            ansible-test units --python $(ANSIBLE_TEST_PYTHON) (tests/unit)'
	@echo 'make integration      pytest tests/integration against PostgreSQL $(MAJORS)'
	@echo 'make test-all-majors  integration against PostgreSQL $(ALL_MAJORS)'
	@echo 'make invariants       the promises over SEEDS generated sources on $(MAJORS) (SEEDS=200 SEED_START=0)'
	@echo 'make molecule         molecule test --all (extensions/molecule: a scenario per role)'
	@echo 'make lint             ansible-lint --profile production'
	@echo 'make build            ansible-galaxy collection build, check the tarball, run galaxy-importer on it (offline)'
	@echo 'make changelog-lint   antsibull-changelog lint'
	@echo 'make ansible-versions prepare, re-run, verify on the oldest (2.16) and newest ansible-core, PostgreSQL $(MAJORS)'
	@echo 'make demo             the prepare and verify playbooks on a throwaway PostgreSQL 15 (DEMO_MAJOR=...)'
	@echo 'make bench            benchmark against psql and community.postgresql (BENCH_ARGS="--tables 1000 10000")'
	@echo 'make clean            remove the work directory $(WORK)'

# .venv is (re)installed when it is missing, broken, or was installed from a
# different requirements-dev.txt (compared by content, not by timestamp).
# $(call ENSURE_VENV,MESSAGE): MESSAGE is printed when nothing had to be done.
ENSURE_VENV = \
	if [ -x $(VPY) ] && $(VPY) -c '' 2>/dev/null && cmp -s requirements-dev.txt $(VENV_STAMP); then \
		$(if $(1),printf 'ok    %-15s ($(1))\n' venv,:); \
	else \
		$(QUIET) venv bash -c ' \
			if ! { [ -x $(VPY) ] && $(VPY) -c "" ; }; then rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi; \
			$(VPY) -m pip install --disable-pip-version-check -r requirements-dev.txt && \
			cp requirements-dev.txt $(VENV_STAMP)'; \
	fi

venv:
	@$(call ENSURE_VENV,up to date)

# Every target that runs a tool from .venv depends on this: `make lint` works on a fresh clone.
_venv:
	@$(call ENSURE_VENV)

postgres: | _venv
	@$(QUIET) postgres $(VPY) tests/harness/pgcluster.py install $(MAJORS)

collection-path:
	@$(PYTHON) tools/collection_path.py collections

workdir:
	@echo $(WORK)

# ansible-test only sees files git knows about and needs the tree under
# .../ansible_collections/pgcdc/clickpipes: run it in a fresh copy of the
# files `git ls-files -co --exclude-standard` lists (works before a commit).
# Sanity tests build their virtual environments with pip's get-pip.py, whose
# download is unreachable here; the bootstrap tool puts an ensurepip-based
# stand-in in ansible-test's cache only when that download fails.
sanity: | _venv
	@if ls tests/sanity/ignore-*.txt >/dev/null 2>&1; then \
		echo "FAIL  sanity: sanity ignore files are not allowed (fix the findings instead):" tests/sanity/ignore-*.txt; exit 1; \
	fi
	@$(QUIET) sanity bash -c ' \
		$(VPY) tools/ansible_test_pip_bootstrap.py --quiet && \
		cd "$$($(PYTHON) tools/collection_path.py ansible-test)" && \
		ansible-test sanity --local --python $(ANSIBLE_TEST_PYTHON) --color no'

units: | _venv
	@if [ -d tests/unit ]; then \
		$(QUIET) units bash -c ' \
			cd "$$($(PYTHON) tools/collection_path.py ansible-test)" && \
			ansible-test units --local --python $(ANSIBLE_TEST_PYTHON) --color no'; \
	else \
		printf 'ok    %-15s (no tests/unit yet)\n' units; \
	fi

# Not hidden: pytest -q prints progress dots and its own summary, which CI
# logs must show. The output is also kept in $(PGCDC_LOG_DIR)/integration.log.
integration: | _venv
	@$(WITH_COLLECTIONS) \
	mkdir -p "$(PGCDC_LOG_DIR)"; start=$$SECONDS; \
	if PGCDC_MAJORS="$(MAJORS)" $(VPY) -m pytest -q -p no:cacheprovider tests/integration 2>&1 </dev/null \
		| tee "$(PGCDC_LOG_DIR)/integration.log"; then \
		printf 'ok    %-15s (%ss)  PostgreSQL %s\n' integration $$((SECONDS - start)) "$(MAJORS)"; \
	else \
		printf 'FAIL  %-15s (%ss)  PostgreSQL %s\n' integration $$((SECONDS - start)) "$(MAJORS)"; \
		exit 1; \
	fi

test-all-majors:
	@$(MAKE) integration MAJORS="$(ALL_MAJORS)"

# tests/integration/test_invariants.py over more generated sources than make test runs (PGCDC_SEEDS there).
SEEDS ?= 200
SEED_START ?= 0
invariants: | _venv
	@$(WITH_COLLECTIONS) \
	PGCDC_MAJORS="$(MAJORS)" PGCDC_SEEDS="$(SEEDS)" PGCDC_SEED_START="$(SEED_START)" \
		$(VPY) -m pytest -q -p no:cacheprovider tests/integration/test_invariants.py </dev/null

# The molecule scenarios of extensions/molecule (default driver, no containers): the default scenario
# starts PostgreSQL 15 and 16 servers, PgBouncer and a Neon API stand-in with tests/harness/pgcluster.py,
# the others run the roles against them. Molecule's state (and the servers' state file) lives in
# $(MOLECULE_STATE), outside the checkout; a run that was interrupted is cleaned up first.
MOLECULE_STATE := $(WORK)/molecule

molecule: | _venv
	@$(QUIET) molecule bash -c ' \
		$(WITH_COLLECTIONS) export MOLECULE_EPHEMERAL_DIRECTORY="$(MOLECULE_STATE)"; \
		$(VPY) tests/harness/pgcluster.py install 15 16 && \
		if [ -d "$(MOLECULE_STATE)/pgcdc" ] || grep -qsE "^(created|prepared|converged): true" "$(MOLECULE_STATE)/state.yml"; then \
			molecule destroy --scenario-name default; \
		fi && \
		molecule test --all'

lint: | _venv
	@$(QUIET) lint bash -c '$(WITH_COLLECTIONS) ansible-lint --profile production --nocolor'

build: | _venv
	@$(QUIET) build bash -c ' \
		rm -rf "$(BUILD_DIR)" && mkdir -p "$(BUILD_DIR)" && \
		ansible-galaxy collection build --force --output-path "$(BUILD_DIR)" && \
		$(PYTHON) tools/check_build.py "$(BUILD_DIR)" && \
		$(VPY) tools/galaxy_import.py "$(BUILD_DIR)"'

changelog-lint: | _venv
	@$(QUIET) changelog-lint bash -c ' \
		antsibull-changelog lint && \
		antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml'

# Runs TEST_STEPS one by one and stops at the first failing step (also under make -k).
test:
	@start=$$SECONDS; ran=; \
	for step in $(TEST_STEPS); do \
		t0=$$SECONDS; \
		if ! $(MAKE) $$step; then \
			passed=$${ran%,}; echo "make test: FAILED at $$step (passed before it:$${passed:- none}; total $$((SECONDS - start))s)"; \
			exit 1; \
		fi; \
		ran="$$ran $$step $$((SECONDS - t0))s,"; \
	done; \
	echo "make test: OK:$${ran%,} (total $$((SECONDS - start))s; PostgreSQL $(MAJORS))"

# prepare, re-run and verify (tests/integration/test_ecosystem.py) under the oldest ansible-core galaxy.yml's
# requires_ansible claims and under the newest, each in a venv of its own in $(ANSIBLE_VENVS). Cores before 2.19
# execute the modules (plugins/plugin_utils/local_module.py). community.postgresql comes from the `ansible` package:
# 11.5.0 bundles 3.14.0, the oldest on PyPI with postgresql_alter_system (no `ansible` release bundles 3.13), which
# is galaxy.yml's lower bound; the newest venv gets the newest ansible-core and community.postgresql.
ANSIBLE_VENVS := $(WORK)/ansible-versions
ANSIBLE_OLDEST := ansible-core~=2.16.0
ANSIBLE_OLDEST_COLLECTIONS := ansible==11.5.0

ansible-versions: | _venv
	@$(MAKE) postgres
	@$(QUIET) ansible-oldest bash -c ' \
		$(PYTHON) -m venv "$(ANSIBLE_VENVS)/oldest" && cd "$(ANSIBLE_VENVS)/oldest" && \
		bin/pip install "$(ANSIBLE_OLDEST)" psycopg2-binary && bin/pip install --no-deps "$(ANSIBLE_OLDEST_COLLECTIONS)"'
	@$(QUIET) ansible-newest bash -c ' \
		$(PYTHON) -m venv "$(ANSIBLE_VENVS)/newest" && cd "$(ANSIBLE_VENVS)/newest" && \
		bin/pip install --upgrade ansible-core psycopg2-binary && bin/pip install --upgrade --no-deps ansible'
	@$(WITH_COLLECTIONS) \
	for venv in oldest newest; do \
		printf '      %-15s ansible-core %s\n' "$$venv" \
			"$$("$(ANSIBLE_VENVS)/$$venv/bin/python" -c 'import ansible.release; print(ansible.release.__version__)')"; \
	done; \
	PGCDC_ANSIBLE_VENVS="$(ANSIBLE_VENVS)/oldest $(ANSIBLE_VENVS)/newest" PGCDC_MAJORS="$(MAJORS)" \
		$(VPY) -m pytest -q -p no:cacheprovider tests/integration/test_ecosystem.py -k ansible_core_of </dev/null

# DEMO_MAJOR: the PostgreSQL major of the throwaway source.
DEMO_MAJOR ?= 15
demo:
	@$(MAKE) venv
	@$(MAKE) postgres MAJORS=$(DEMO_MAJOR)
	@PGCDC_DEMO_MAJOR=$(DEMO_MAJOR) $(VPY) tools/demo.py

# Not a test: times psql, community.postgresql and this collection side by side and writes docs/benchmark.md.
# BENCH_ARGS="--tables 1000 10000 50000 --runs 5 --fleet 50" for more; --fleet 0 leaves the fleet run out.
BENCH_ARGS ?= --tables 1000 10000 --runs 3 --fleet 50
bench:
	@$(MAKE) venv
	@$(MAKE) postgres MAJORS=15
	@$(VPY) tools/bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf "$(WORK)"
