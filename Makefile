# trackguard — two commands: `make demo` and `make test`. Both set everything up
# (Debian packages, .venv with the pinned stack, offline model files) and are
# idempotent: a second run skips what is already there.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
export TRACKGUARD_HOME ?= $(CURDIR)/.trackguard
export HF_HUB_OFFLINE := 1

# Speech synthesisers and audio tools build the synthetic corpus; chromaprint is
# the duplicate-detection baseline; chromium drives the web UI tests.
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-italp16k festvox-itapc16k \
                festvox-ca-ona-hts festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph \
                festvox-ru festvox-suopuhe-lj festvox-suopuhe-mv sox ffmpeg fluidsynth fluid-soundfont-gm libchromaprint-tools libsndfile1 \
                chromium chromium-driver

.PHONY: demo test setup system venv models lint typecheck unit clean

demo: setup
	$(VENV)/bin/trackguard demo

test: setup lint typecheck unit

setup: system venv models

system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMPS)/venv: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "trackguard needs Python 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	mkdir -p $(STAMPS) && touch $@

venv: $(STAMPS)/venv

models: venv
	$(VENV)/bin/trackguard setup models

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) .trackguard .pytest_cache .mypy_cache .ruff_cache
