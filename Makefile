# ff-mcp: `make demo` runs the main job on embedded data, `make test` runs the test suite.
# Both set themselves up on a fresh Debian machine and are quick the second time.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch; set TORCH_SPEC="torch" (or pre-install CUDA torch in $(VENV)) to keep a GPU build.
TORCH_SPEC ?= torch==2.13.0
DEB_PACKAGES := default-jre-headless clojure libdata-json-clojure g++
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: demo test setup install deb clean bench-throughput bench-accuracy conformance

demo: $(VENV)/.deps
	$(BIN)/ff-mcp demo

test: $(VENV)/.deps deb
	$(BIN)/pytest -q

setup: $(VENV)/.deps

# the console script in the venv, and the MCP client configuration that starts it from any directory
install: $(VENV)/.deps
	@echo "ff-mcp is installed at $(abspath $(BIN))/ff-mcp (add $(abspath $(BIN)) to PATH, or use the full path)"
	@echo "MCP client configuration (claude_desktop_config.json, VS Code mcp.json, ...):"
	@$(BIN)/ff-mcp serve --print-config

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	touch $@

$(VENV)/.deps: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e ".[test,jax]"
	touch $@

# The JVM, Debian's Clojure and data.json for the Clojure tests, g++ for the compiled step's tests;
# installed only when missing.
deb:
	@if ! command -v java >/dev/null || ! command -v clojure >/dev/null || [ ! -f /usr/share/java/data.json.jar ] \
		|| ! command -v g++ >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(DEB_PACKAGES); \
	fi

bench-throughput: $(VENV)/.deps
	$(BIN)/ff-mcp bench throughput --record --dataset mnist --hidden 1000,1000,1000 --batch-size 100 --optimizer sgd

bench-accuracy: $(VENV)/.deps
	$(BIN)/ff-mcp bench accuracy --record --dataset digits --hidden 500,500 --epochs 60 --batch-size 50 --lr 1e-3

# The official MCP conformance suite (HTTP) and the MCP Inspector CLI --strict (stdio); needs npm.
conformance: $(VENV)/.deps
	bash bench/conformance/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
