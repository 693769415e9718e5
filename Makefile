# Two commands on a fresh machine:  `make demo` (install + answer a question)  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
# The CPU build of PyTorch, installed before sentence-transformers so that it is not
# replaced by a multi-GB CUDA build. Elsewhere add e.g. TORCH_PIP_ARGS="--index-url <PyTorch CPU wheel index>".
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PIP := $(VENV)/bin/python -m pip

.PHONY: install demo test lint bench bench-extraction bench-refresh bench-timeframe bench-llm bench-store fit-answers clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_PIP_ARGS) "$(TORCH)"
	$(PIP) install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/newsbot ask "Who met whom in Lima?"

# Two test processes (pytest-xdist), each test module kept whole in one of them: much of the
# suite waits on subprocesses, servers and schedules, so two overlap it (~8.5 instead of
# ~12 minutes on 2 cores). `.venv/bin/pytest` alone runs it in one process.
test: install
	$(VENV)/bin/pytest -n 2 --dist loadscope

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# newsbot against LangChain + HuggingFaceEmbeddings + FAISS on MultiHop-RAG (bench/README.md):
# a table on stdout, bench/results/latest.json. BENCH_ARGS="--quick" for a smoke run.
bench: install
	TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)" $(VENV)/bin/python -m bench.run $(BENCH_ARGS)

# Article extraction on the real pages of ../shared/eval/article-extraction (README, Article
# extraction): newsbot's HTML path beside trafilatura and the published extractors.
bench-extraction: install
	$(VENV)/bin/python -m bench.extraction $(BENCH_ARGS)

# Answer latency while the bot's own refresh fetches and embeds 200 new articles, against idle
# (README, Live news).
bench-refresh: install
	$(VENV)/bin/python -m bench.refresh $(BENCH_ARGS)

# What reading times in questions costs per question (bench/timeframe.py).
bench-timeframe: install
	$(VENV)/bin/python -m bench.timeframe $(BENCH_ARGS)

# LLM-written answers from a real model (llama.cpp's server, the packaged Gemma 3 270M, in a
# venv of its own) beside the extractive ones on the natural-questions dev set (bench/llm.py).
bench-llm: install
	$(VENV)/bin/python -m bench.llm $(BENCH_ARGS)

# The two stores side by side, FAISS files vs. PostgreSQL + pgvector, on MultiHop-RAG and on
# 100k and 1M synthetic passages (bench/README.md, Storage backends): a table on stdout,
# bench/results/store.json. BENCH_ARGS="--quick" for MultiHop-RAG and 20k only.
bench-store: install
	$(VENV)/bin/python -m bench.store $(BENCH_ARGS)

# Refit retrieval/answer_model.json on the development sets in ../shared/eval (README, Answers):
# indexes MultiHop-RAG's corpus into FIT_INDEX once (about 8 minutes), then fits (about 1 minute).
FIT_INDEX ?= $(HOME)/.cache/newsbot/fit-index
fit-answers: install
	test -f $(FIT_INDEX)/manifest.json || $(VENV)/bin/newsbot ingest ../shared/eval/multihop-rag/corpus.jsonl --index $(FIT_INDEX)
	$(VENV)/bin/python -m tools.fit_answers --index $(FIT_INDEX)

clean:
	rm -rf $(VENV) build *.egg-info
