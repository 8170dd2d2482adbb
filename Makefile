# db4 — `make run` starts a local cluster, `make test` runs the whole suite. `make help` lists all.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/db4/v1/*.proto)
ARGS ?=
# Unit and fault tests run on this many workers (pytest-xdist; each fault-test module, with its
# own clusters, stays on one worker). Integration tests share one cluster and run one at a time,
# as do fault tests marked `serial` (they measure latency). JOBS=1 runs everything in turn.
JOBS ?= 2
# A run that selects no test of one part (ARGS="-k name" picks from another) is no failure:
# pytest's exit status 5.
NONE_OK := || [ $$? -eq 5 ]

.PHONY: help run test test-unit test-integration test-faults lint genproto verify-genproto bench deps clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: $(STAMP) /usr/bin/etcd ## install what is missing (etcd-server, virtualenv, the project)

/usr/bin/etcd:
	@command -v etcd >/dev/null || { \
	  echo "installing etcd-server (Debian package)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq etcd-server >/dev/null; }

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PIP) install -q --upgrade pip >/dev/null
	@$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

run: deps ## start a local cluster (db4 dev); ARGS="--nodes 3 --shards 8" to change it
	$(VENV)/bin/db4 dev $(ARGS)

test: deps lint verify-genproto deploy-check ## lint, then unit, integration and fault suites, then the image
	@$(MAKE) --no-print-directory test-unit test-integration test-faults
	@$(MAKE) --no-print-directory test-deploy

test-unit: deps ## unit tests only (no sockets), on JOBS workers
	$(PY) -m pytest -q -n $(JOBS) tests/unit $(ARGS) $(NONE_OK)

test-integration: deps ## integration tests (real etcd, node and router processes)
	$(PY) -m pytest -q tests/integration $(ARGS) $(NONE_OK)

test-faults: deps ## fault tests (kill -9, restarts), on JOBS workers, then the serial ones alone
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile -m "not serial" tests/faults $(ARGS) $(NONE_OK)
	$(PY) -m pytest -q -m serial tests/faults $(ARGS) $(NONE_OK)

lint: deps ## ruff, mypy, import-linter contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

genproto: deps ## regenerate the committed Python code from protos/
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=protos --grpc_python_out=protos \
	  --pyi_out=protos $(PROTOS)

verify-genproto: deps ## fail when the committed generated code differs from protos/
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=$$tmp --grpc_python_out=$$tmp \
	  --pyi_out=$$tmp $(PROTOS) && \
	for f in $$tmp/db4/v1/*.py*; do \
	  diff -q $$f protos/db4/v1/$$(basename $$f) >/dev/null || \
	    { echo "generated code drifted: protos/db4/v1/$$(basename $$f) (run make genproto)"; exit 1; }; \
	done; \
	for f in protos/db4/v1/*_pb2*.py*; do \
	  test -f $$tmp/db4/v1/$$(basename $$f) || { echo "stale generated file: $$f"; exit 1; }; \
	done; echo "generated code matches protos/"

bench: deps ## run the benchmarks (each prints ratios to floors measured in the same run)
	$(PY) bench/crud.py
	$(PY) bench/query.py
	$(PY) bench/scale.py
	$(PY) bench/txn.py
	$(PY) bench/cdc.py
	$(PY) bench/search.py
	$(PY) bench/ingest.py
	$(PY) bench/split.py --writers 0
	$(PY) bench/split.py
	$(PY) bench/group_commit.py

# Deployment (deploy/README.md): offline checks of the manifests and the Dockerfile, the image,
# and a cluster of containers of that image on loopback.
DEPLOY_VENV ?= .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
UV_VERSION := 0.13.9
IMAGE ?= localhost/db4:dev

.PHONY: deploy-check deploy-image test-deploy deploy-clean

$(DEPLOY_STAMP): deploy/requirements-check.txt
	@test -x $(DEPLOY_VENV)/bin/python || python3 -m venv $(DEPLOY_VENV)
	@$(DEPLOY_VENV)/bin/pip install -q uv==$(UV_VERSION)
	@$(DEPLOY_VENV)/bin/uv pip install -q --python $(DEPLOY_VENV)/bin/python \
	  -r deploy/requirements-check.txt
	@touch $(DEPLOY_STAMP)

deploy-check: deps $(DEPLOY_STAMP) ## render deploy/k8s overlays; kubernetes-validate, checkov, hadolint, yamllint
	@DEPLOY_VENV=$(DEPLOY_VENV) deploy/check.sh

deploy-image: deps ## build the db4 image with podman (installs podman, debootstrap, runc when missing)
	@command -v podman >/dev/null && command -v debootstrap >/dev/null && command -v runc >/dev/null || { \
	  echo "installing podman, buildah, debootstrap, runc (Debian packages)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO apt-get install -y -qq podman buildah debootstrap runc >/dev/null; }
	@PIP=$(PIP) deploy/build-image.sh $(IMAGE)

test-deploy: deploy-image ## etcd, 2 nodes and a router as containers of the image, used through the SDK
	DB4_TEST_IMAGE=$(IMAGE) $(PY) -m pytest -q tests/deploy

deploy-clean: ## remove the image, the base image, podman's storage and the checkers' virtualenv
	-deploy/podman.sh rmi --force $(IMAGE) localhost/debian-min:bookworm
	rm -rf deploy/.cache $(DEPLOY_VENV)

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
