# The README's commands. Each works on a fresh machine with only Python 3.11+ installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test eval bench clean

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
	@echo "Chat at http://127.0.0.1:8000"
	$(BIN)/rag serve --host 127.0.0.1 --port 8000

# Set up and run the whole test suite, browser and Chroma-server tests included.
test: setup
	$(BIN)/python -m pytest

eval: setup
	$(BIN)/rag ingest index/articles
	$(BIN)/rag eval --questions eval/questions.jsonl --out eval/out/bundled

bench: setup
	$(BIN)/python eval/bench.py

clean:
	rm -rf index/chroma index/lexical index/eval-cache test-artifacts eval/out
