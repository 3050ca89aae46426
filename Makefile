# `make sweep` and `make test` are the README's quick start; both work on a fresh Debian/Ubuntu machine.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Outside a virtual environment every target runs in the project's own, .venv, made on first use with BASE_PYTHON:
# Debian 12 and Ubuntu 24.04 refuse pip installs into the system Python (PEP 668). Inside one (an activated venv,
# or conda) the targets use it. `. .venv/bin/activate` gives a shell what the targets have.
BASE_PYTHON ?= python3
VENV ?= .venv
ifeq ($(VIRTUAL_ENV)$(CONDA_PREFIX),)
ENVIRONMENT := $(VENV)/bin/python
PYTHON ?= $(ENVIRONMENT)
export PATH := $(abspath $(VENV))/bin:$(PATH)
else
PYTHON ?= python3
endif
PIP ?= $(PYTHON) -m pip
BETAS ?= 0.1,0.5,1.0
SEEDS ?= 1,2,3
JOBS ?= 2
RESULTS ?= multirun/results

.PHONY: install install-dev reference data sweep results results-tcvae results-conv results-shapes results-models results-agreement results-udr test \
  test-fast lint format bench bench-gpu

$(VENV)/bin/python:
	@command -v $(BASE_PYTHON) >/dev/null || { echo "BASE_PYTHON=$(BASE_PYTHON): no such Python; give the path of a" \
	  "Python 3.10 or newer (make install BASE_PYTHON=/usr/bin/python3)" >&2; exit 1; }
	@$(BASE_PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "python3 -m venv needs python3-venv: installing it"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	$(BASE_PYTHON) -m venv $(VENV)

install: $(ENVIRONMENT)
	$(PIP) install -q -e .

install-dev: $(ENVIRONMENT)
	$(PIP) install -q -e '.[dev]'
	@$(MAKE) -s reference

# disentanglement_lib 1.5's own metric functions, which tests/test_factor_scores.py runs on the same codes as ours: a
# venv of their own (the package pins TensorFlow 1; its metric modules need only gin, scikit-learn, scipy, absl and six,
# gin.tf stubbed by tests/reference/dlib_scores.py), with this project's scikit-learn version, so that any difference
# is the code's.
REFERENCE_VENV ?= .venv-reference
reference:
	@[ -x $(REFERENCE_VENV)/bin/python ] || $(BASE_PYTHON) -m venv $(REFERENCE_VENV)
	$(REFERENCE_VENV)/bin/pip install -q --no-deps disentanglement-lib==1.5
	$(REFERENCE_VENV)/bin/pip install -q gin-config==0.4.0 absl-py six scipy \
	  "scikit-learn==$$($(PYTHON) -c 'import sklearn; print(sklearn.__version__)')"

# Fashion-MNIST: use what is there; else Debian's package (offline); else torchvision's download (online).
data:
	@$(PYTHON) -m betavae.data data.download=false >/dev/null 2>&1 \
	  || (command -v apt-get >/dev/null && $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist) \
	  || $(PYTHON) -m betavae.data
	@echo "Fashion-MNIST: $$($(PYTHON) -m betavae.data data.download=false)"

# A sweep that did not finish (killed, stopped, a job failed) leaves its directory's name in $(SWEEP_MARK): the next
# `make sweep` continues it there (its finished jobs are not run again) instead of starting a new one.
SWEEP_MARK ?= multirun/.make-sweep
sweep: install data
	@dir=$$(cat $(SWEEP_MARK) 2>/dev/null); \
	if [ -n "$$dir" ]; then echo "make sweep: continuing the unfinished sweep $$dir (delete $(SWEEP_MARK) to start anew)"; \
	else dir=multirun/$$(date +%Y-%m-%d/%H-%M-%S); mkdir -p $$(dirname $(SWEEP_MARK)) && echo "$$dir" > $(SWEEP_MARK); fi; \
	$(PYTHON) -m betavae.train -m beta=$(BETAS) "hydra.sweep.dir=$$dir" && rm -f $(SWEEP_MARK)

# The README's Results: every β with three training seeds ($(JOBS) jobs at a time), then the likelihood
# evaluation of every job on all 10,000 test images (FID and the probes come from training's test pass).
results: install data
	$(PYTHON) -m betavae.train -m beta=$(BETAS) seed=$(SEEDS) hydra.sweep.dir=$(RESULTS) \
	  hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS)
	$(PYTHON) -m betavae.evaluate sweep_dir=$(RESULTS) fid=none eval.probe=false eval.figures=false

# The β-TCVAE and convolutional rows of docs/results.md: one seed each (SEED), one job at a time; the conv network for
# CONV_EPOCHS epochs (about 9 min per job on one core of this machine).
SEED ?= 1
CONV_EPOCHS ?= 10
TC_BETAS ?= 1,4,10
results-tcvae: install data
	$(PYTHON) -m betavae.train -m objective=tcvae beta=$(TC_BETAS) seed=$(SEED) hydra.sweep.dir=$(RESULTS)-tcvae

results-conv: install data
	$(PYTHON) -m betavae.train -m model=conv beta=$(BETAS) seed=$(SEED) trainer.max_epochs=$(CONV_EPOCHS) \
	  hydra.sweep.dir=$(RESULTS)-conv

# docs/results.md's disentanglement study: β-VAE and β-TCVAE at β = 1, 4, 10, three seeds each, on the shapes data
# (10 latent dimensions, as on dSprites; 50 epochs), $(JOBS) jobs at a time; every score at each job's test pass.
SHAPES_BETAS ?= 1,4,10
SHAPES_EPOCHS ?= 50
results-shapes: install
	$(PYTHON) -m betavae.train -m data=shapes model.net.latent_dim=10 objective=beta,tcvae beta=$(SHAPES_BETAS) \
	  seed=$(SEEDS) trainer.max_epochs=$(SHAPES_EPOCHS) hydra.sweep.dir=$(RESULTS)-shapes \
	  hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS)

# docs/results.md's comparison of the study's models: β-VAE, FactorVAE, DIP-VAE-I and -II at two values of each's own
# weight, three seeds, into one sweep directory (one multirun per model: each sweeps its own key).
MODELS_EPOCHS ?= 30
MODELS_COMMON = data=shapes model.net.latent_dim=10 seed=$(SEEDS) trainer.max_epochs=$(MODELS_EPOCHS) \
  hydra.sweep.dir=$(RESULTS)-models hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS)
results-models: install
	$(PYTHON) -m betavae.train -m $(MODELS_COMMON) beta=1,4
	$(PYTHON) -m betavae.train -m $(MODELS_COMMON) objective=factorvae objective.gamma=10,40
	$(PYTHON) -m betavae.train -m $(MODELS_COMMON) objective=dipvae objective.type=i objective.lambda_od=1,10
	$(PYTHON) -m betavae.train -m $(MODELS_COMMON) objective=dipvae objective.type=ii objective.lambda_od=1,10

# docs/results.md's agreement between scores: every job of results-models scored again from its saved codes with the
# families added in 0.13, and Spearman's ρ between every pair of scores with bootstrap intervals (about 10 minutes).
results-agreement: install
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/agreement.py $(RESULTS)-models benchmarks/results_0.13/agreement

# docs/results.md's unsupervised model selection: the summaries of the shapes study and the README's sweep again (UDR
# of every group of seeds, selection.npz), then UDR against the supervised scores and its spread over image draws.
UDR_DRAWS ?= 5
results-udr: install
	$(PYTHON) -m betavae.summarize sweep_dir=$(RESULTS)-shapes
	$(PYTHON) benchmarks/udr_validation.py $(RESULTS)-shapes --draws $(UDR_DRAWS) --images 1000,2000,5000
	$(PYTHON) -m betavae.summarize sweep_dir=$(RESULTS)
	$(PYTHON) benchmarks/udr_validation.py $(RESULTS) --draws $(UDR_DRAWS) --images 1000,2000,5000,10000

# docs/results.md: UDR's spread with five seeds at one β (the README's sweep has three).
UDR_BETA ?= 1.0
results-udr-seeds: install data
	$(PYTHON) -m betavae.train -m beta=$(UDR_BETA) seed=1,2,3,4,5 hydra.sweep.dir=$(RESULTS)-seeds \
	  hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS)

# Two pytest-xdist workers, whole files each (module fixtures: a Slurm cluster, a trained sweep), every job on one
# torch thread: the Slurm, signal and sweep tests spend much of their time waiting, the other worker fills it.
TEST_WORKERS ?= 2
test: install-dev data
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Unit tests only (no training, subprocesses or whole-data passes): the edit loop, about 50 s on this project's 2-core
# machine (docs/development.md), with the dev extras installed first as `make test` has them.
test-fast: install-dev
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff format . && $(PYTHON) -m ruff check --fix .

bench: install data
	$(PYTHON) benchmarks/train_speed.py
	$(PYTHON) benchmarks/callback_cost.py

# On a machine with a CUDA GPU (docs/sweeps.md, GPU and multi-GPU): the epoch against the hand loop on the GPU (float32 and
# bf16-mixed), one 30-epoch job with Lightning's simple profiler (training, validation, figures and FID in its
# report), and a 3-job β sweep with the three jobs sharing the GPU against the same sweep run sequentially.
bench-gpu: install data
	$(PYTHON) benchmarks/train_speed.py --device cuda --variants train,val,default,bf16
	rm -rf outputs/bench-gpu  # a finished job would not run again
	$(PYTHON) -m betavae.train trainer=gpu +trainer.profiler=simple hydra.run.dir=outputs/bench-gpu
	$(PYTHON) benchmarks/launchers.py --device cuda --epochs 30 --betas 0.1,0.5,1.0 --n-jobs 3 --rounds 1
