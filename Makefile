# iiie — the whole setup is two commands on a fresh machine:
#   make reproduce   # installs what it needs into .venv, runs the default experiment (CPU)
#   make test        # installs the dev extras too, runs the test suite (incl. notebooks)
# Variables: EXPERIMENT=smoke|tiny|paper_tiny|paper|ablate_..., ARGS="hydra overrides", PYTEST_ARGS="-k ...".

PYTHON_BOOT ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt
EXPERIMENT ?= smoke
ARGS ?=
PYTEST_ARGS ?=

.PHONY: browser install install-dev install-gpu weights reproduce test ablate lint serve-vlm parity clean help

help:
	@echo "make reproduce [EXPERIMENT=...] [ARGS='overrides']         run an experiment, write results/<experiment>/:"
	@echo "    EXPERIMENT=smoke (default; CPU, seconds) | tiny (the diffusion editors on tiny weights, CPU)"
	@echo "    | paper_tiny (every paper method on tiny weights, CPU) | paper (Table 1: GPU, weights, make serve-vlm)"
	@echo "make test [PYTEST_ARGS=...]                                 run the test suite"
	@echo "make ablate                                                 the smoke ablation sweep -> results/ablate_smoke/comparison.md"
	@echo "make ablate STEP=plan|mask|edit|route|all [PROFILE=tiny|full] one step's ablation -> results/ablate_<step>[_tiny]/comparison.md"
	@echo "make parity                                                 BrushNet / PowerPaint / InfEdit against ../shared/golden"
	@echo "make serve-vlm [ARGS='vlm=...']                             start vLLM's OpenAI server for planner=vlm (GPU)"
	@echo "make lint                                                   ruff"
	@echo "make notebook                                               JupyterLab on notebooks/ (03: looking at results/<experiment>)"
	@echo "make install-gpu                                            vLLM + GPU pins (requirements/constraints-gpu.txt)"
	@echo "make weights [WHAT=experiment=paper|method=iiie|all]        download the weights, write weights/weights.lock"
	@echo "make install | install-dev                                  .venv with the CPU pins (dev: + test extras)"
	@echo "make browser                                                headless Chromium for the gallery's browser test"
	@echo "make clean                                                  remove runs/ results/ outputs/ multirun/ .cache/iiie"

$(VENV)/bin/python:
	$(PYTHON_BOOT) -m venv $(VENV)

# torch first, from the pins in $(CONSTRAINTS), so nothing else can pull another build.
$(VENV)/.installed-base: $(VENV)/bin/python pyproject.toml $(CONSTRAINTS)
	$(PIP) install -q -c $(CONSTRAINTS) torch torchvision
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-base
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev

# The GPU path: vLLM pins its own torch, so this uses the GPU constraints file; it stamps the
# base install too, so that `make reproduce` afterwards keeps these pins.
GPU_CONSTRAINTS := requirements/constraints-gpu.txt
install-gpu: $(VENV)/bin/python
	$(PIP) install -q -c $(GPU_CONSTRAINTS) torch torchvision
	$(PIP) install -q -c $(GPU_CONSTRAINTS) -e '.[gpu,e2e]'
	touch $(VENV)/.installed-base

# Weights for a selection of the manifest conf/weights.yaml (network; never at run time).
WHAT ?= experiment=paper
weights: install
	$(PY) -m iiie.weights fetch $(WHAT) $(ARGS)

reproduce: install
	$(PY) -m iiie.run experiment=$(EXPERIMENT) $(ARGS)

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# STEP=plan|mask|edit|route|all runs conf/experiment/ablate_<step>[_tiny].yaml; no STEP: the smoke sweep.
STEP ?=
PROFILE ?= full
ABLATE_STEPS := $(if $(filter all,$(STEP)),plan mask edit route,$(STEP))
ABLATE_SUFFIX := $(if $(filter tiny,$(PROFILE)),_tiny,)

ablate: install
ifeq ($(STEP),)
	$(PY) -m iiie.run experiment=ablate_smoke $(ARGS)
else
	@for s in $(ABLATE_STEPS); do case $$s in plan|mask|edit|route) ;; *) echo "STEP must be plan|mask|edit|route|all, not $$s" >&2; exit 2;; esac; done
	@case "$(PROFILE)" in tiny|full) ;; *) echo "PROFILE must be tiny or full, not $(PROFILE)" >&2; exit 2;; esac
	set -e; for s in $(ABLATE_STEPS); do $(PY) -m iiie.run experiment=ablate_$${s}$(ABLATE_SUFFIX) runtime.progress=false $(ARGS); done
endif

parity: install
	$(PY) -m iiie.parity brushnet ../shared/golden/brushnet
	$(PY) -m iiie.parity powerpaint ../shared/golden/powerpaint
	$(PY) -m iiie.parity infedit ../shared/golden/infedit

# JupyterLab (dev extras) on notebooks/; iiie.notebook.open_results reads results/<experiment>.
.PHONY: notebook
notebook: install-dev
	$(VENV)/bin/jupyter lab notebooks/

lint: install-dev
	$(VENV)/bin/ruff check iiie tests benchmarks

serve-vlm: install
	$(PY) -m iiie.vlm.serve $(ARGS)

browser:  # headless Chromium for the gallery's browser test (Debian's package)
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

clean:
	rm -rf runs results outputs multirun .cache/iiie
