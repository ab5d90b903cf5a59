# The README's commands. Each works on a fresh machine with only Python 3.11+ installed.
PYTHON ?= python3
PORT ?= 8000
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint eval bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel. A bare torch requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Set up, index the bundled articles (only new or changed ones are embedded), and serve the chat.
run: setup
	$(BIN)/rag ingest index/articles
	@echo "Chat at http://127.0.0.1:$(PORT)"
	$(BIN)/rag serve --host 127.0.0.1 --port $(PORT)

# Set up and run the whole test suite, browser and Chroma-server tests included.
test: setup
	$(BIN)/python -m pytest

# Lint and formatting, as CI checks them before the tests.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: setup
	$(BIN)/rag ingest index/articles
	$(BIN)/rag eval --questions eval/questions.jsonl --out eval/out/bundled

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/rag bench

clean:
	rm -rf index/chroma index/lexical index/eval-cache index/bench test-artifacts eval/out bench.json
