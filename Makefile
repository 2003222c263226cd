# Two commands: `make demo` and `make test`. Both install what they need into .venv first
# (idempotent; a no-op when pyproject.toml has not changed).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1
# two workers (pytest-xdist), a test module per worker: the suite waits on servers, browsers and
# subprocesses as much as it computes, so both cores stay busy
PYTEST_ARGS ?= -n 2 --dist loadfile --durations=25

.PHONY: install demo test lint format bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Debian packages the tests need: PostgreSQL (the API tests start a throwaway cluster), Chromium and
# CJK fonts (the publication report is rendered headless and its charts checked); and wrk, the load
# generator of `python -m bench.api` (make bench). Idempotent: quick when already installed (no
# apt-get at all); apt-get update first otherwise; root or sudo.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	dpkg-query -W -f='$${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" \
		|| fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-noto-cjk"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	if [ -z "$$missing" ]; then \
		echo "system-deps: PostgreSQL, Chromium, CJK fonts and wrk present"; \
	else \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		echo "system-deps: installing$$missing"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

demo: install
	$(BIN)/safecredit demo

# ruff: the formatting and lint rules of pyproject.toml ([tool.ruff]); `make format` applies them
lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install system-deps lint
	$(BIN)/pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

bench: install system-deps
	$(BIN)/python -m bench.run

clean:
	rm -rf var .pytest_cache
