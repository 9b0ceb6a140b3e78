# The two fresh-machine commands (see README): `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# CPU torch for this machine and CI; users with a CUDA build keep theirs (pyproject does not pin torch).
TORCH_SPEC ?= torch==2.13.0
# Whatever torch is installed stays installed: pip may not up- or downgrade it.
CONSTRAINTS := .torch-constraint.txt
DEMO_OUT ?= demo_out

.PHONY: install install-test demo test lint bench

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	@$(PYTHON) -c "import torch; print('torch==' + torch.__version__)" > $(CONSTRAINTS)
	$(PIP) install -c $(CONSTRAINTS) -e .

install-test: install
	$(PIP) install -c $(CONSTRAINTS) -e ".[dev]"
	# fastmri's declared dependencies pull torchvision (a CUDA wheel that breaks on import here):
	# install the reference implementation without them, plus what it really imports.
	$(PIP) install -c $(CONSTRAINTS) --no-deps fastmri==0.3.0
	$(PIP) install -c $(CONSTRAINTS) pandas requests runstats

demo: install
	mrirecon demo --out $(DEMO_OUT)

test: install-test
	$(PYTHON) -m pytest -q

lint:
	ruff check mrirecon tests scripts
	ruff format --check mrirecon tests scripts
