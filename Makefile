# Two commands for a fresh machine (Python 3.11+, nothing else running):
#   make demo   the closed loop on the embedded simulated network
#   make test   lint, type-check and the whole test suite
# Both create .venv and install what they need; re-runs skip what is done.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch first, pinned, so the project's torch range finds it satisfied and
# never pulls another build. Where pip has no local wheel it comes from PyPI;
# pick a build with TORCH_INDEX (see README: CPU-only or CUDA).
TORCH_VERSION ?= 2.13.0
TORCH_INDEX   ?=
TORCH_ARGS    := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: demo test lint typecheck unit integration install install-dev system-deps clean

# Tools the integration tests compare the lab with: net-snmp's command-line
# tools and snmpd, yuma123's netconfd behind OpenSSH, and for the namespace lab
# FRR (with its SNMP module), nftables and iproute2. Installed with apt-get
# when missing and we may (root); otherwise those tests skip (and fail in CI).
SYSTEM_TOOLS := snmpwalk snmpd netconfd sshd vtysh nft ip
SYSTEM_PKGS  := snmp snmpd netconfd netconfd-module-ietf-interfaces openssh-server \
                frr frr-snmp nftables iproute2

demo: $(VENV)/.installed
	$(VENV)/bin/autonoc demo

test: $(VENV)/.installed-dev system-deps lint typecheck
	$(PY) -m pytest -q

system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do \
	  PATH="$$PATH:/usr/sbin" command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (apt-get: $(SYSTEM_PKGS))"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSTEM_PKGS) >/dev/null || \
	      { apt-get update -q >/dev/null && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSTEM_PKGS) >/dev/null; }; \
	  else echo "note:$$missing missing: apt-get install $(SYSTEM_PKGS) (their tests skip)"; fi; \
	fi

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

unit: $(VENV)/.installed-dev
	$(PY) -m pytest -q tests/unit

integration: $(VENV)/.installed-dev
	$(PY) -m pytest -q tests/integration tests/e2e

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "autonoc needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)"; exit 2; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "could not create $(VENV): on Debian/Ubuntu run 'apt-get install python3-venv'"; exit 2; }
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_ARGS) "torch==$(TORCH_VERSION)"
	@touch $@

$(VENV)/.installed: $(VENV)/.python pyproject.toml
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[dev]'
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
