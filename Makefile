# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data/synth-ballroom
PORT ?= 8501
# The app listens on this machine only; HOST=0.0.0.0 exposes it and then needs
# TFCNN_APP_PASSWORD (see docs/security.md).
HOST ?= 127.0.0.1

.PHONY: run test test-fast safety-probes studies venv test-deps data ballroom bench checkpoints table1 scenarios sweep-measure clean

# The pinned requirements first, then tfcnn itself as an editable install (so `python -m
# tfcnn`, the app's training subprocesses, bench/ and scripts/ import this checkout).
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(BIN)/.installed

# Test-only packages (Essentia, the original front end's library); `make run` does not need them.
$(BIN)/.test-installed: $(BIN)/.installed requirements-test.txt
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

test-deps: $(BIN)/.test-installed

data: venv
	test -f $(DATA)/metadata.csv || $(BIN)/python -m tfcnn synth $(DATA)

# The real Ballroom data set in one step: download data1.tar.gz (1.5 GB, resumable,
# md5-checked) or unpack a copy you have (ARCHIVE=~/data1.tar.gz), build its log-mel cache,
# and say where it landed. Under data/ the app may read it without TFCNN_ALLOWED_ROOTS.
BALLROOM ?= data/ballroom
ARCHIVE ?=
MD5 ?=
ballroom: venv
	$(BIN)/python -m tfcnn download ballroom --to $(BALLROOM) $(if $(ARCHIVE),--archive $(ARCHIVE)) $(if $(MD5),--md5 $(MD5))
	$(BIN)/python -m tfcnn features $(BALLROOM)
	@echo "Ballroom is ready at $(abspath $(BALLROOM))/BallroomData"
	@echo "  app:   make run, then sidebar > Ballroom folder > $(abspath $(BALLROOM))/BallroomData"
	@$(if $(filter $(abspath data)/%,$(abspath $(BALLROOM))),true,echo "         (outside data/: start the app with TFCNN_ALLOWED_ROOTS=$(abspath $(BALLROOM)) make run)")
	@echo "  train: $(BIN)/python -m tfcnn train $(BALLROOM) --arch timefreq --preset paper --out runs/ballroom-timefreq"

# TLS_CERT/TLS_KEY: serve HTTPS directly (with TFCNN_APP_PASSWORD, see docs/security.md).
TLS_CERT ?=
TLS_KEY ?=
run: data
	TFCNN_DATA_DIR=$(abspath $(DATA)) $(BIN)/python -m tfcnn.ui.serve --host $(HOST) --port $(PORT) \
		$(if $(TLS_CERT),--tls-cert $(TLS_CERT)) $(if $(TLS_KEY),--tls-key $(TLS_KEY))

test: test-deps
	$(BIN)/python tests/ensure_chromium.py
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q --durations=15 tests

# The Filters page's default study of each shipped model (git add -f the printed files).
studies: venv
	$(BIN)/python -m scripts.shipped_studies

# docs/safety-probes.md from a run of the tests marked `safety`.
safety-probes: test-deps
	OMP_NUM_THREADS=1 $(BIN)/python -m scripts.safety_report

# Development: everything but the end-to-end (`slow`) tests; `make test` still runs them all.
test-fast: test-deps
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow" tests

# All benchmarks; `parity` trains on $(DATA) (about 10 min of the total).
bench: data
	TFCNN_DATA_DIR=$(abspath $(DATA)) $(BIN)/python -m bench

# Shipped models and Table 1 on the default SynthBallroom (long: see docs/shipped-models.md).
checkpoints: data
	$(BIN)/python -m scripts.train_shipped --data $(DATA)

clean:
	rm -rf runs .pytest_cache

# SynthBallroom lab: generate the scenarios, 10-fold time/frequency/timefreq on each with seeds
# $(SEEDS), the conflict set evaluated by the paper models, and
# checkpoints/table1-scenarios.json (long: see docs/lab.md).
PER_CLASS ?= 60
CLIP_SECONDS ?= 30
SEEDS ?= 0,1,2
scenarios: venv
	nice -n 10 $(BIN)/python -m scripts.train_scenarios --data-root $(dir $(DATA)) \
		--per-class $(PER_CLASS) --seconds $(CLIP_SECONDS) --seeds $(SEEDS)

# Temporal filter length on both sweep engines: time, 1x30/1x60/1x80 x seeds 0,1,2, 10 folds,
# quick preset; runs/sweep-measure/report.{json,md} (long: see docs/sweeps.md).
sweep-measure: data
	nice -n 10 $(BIN)/python -m scripts.sweep_measure $(DATA) --out runs/sweep-measure
