# The two commands a newcomer types: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz soak lint bench deb clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/accessd --demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

fuzz: $(STAMP)
	ACCESSD_FUZZ_EXAMPLES=1000000 $(BIN)/python -m pytest -m fuzz

soak: $(STAMP)
	ACCESSD_SOAK_SECONDS=600 $(BIN)/python -m pytest -m soak

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# accessd_<version>_all.deb here (dpkg-deb; README "Debian package").
deb:
	bash systemd/debian/build.sh .

clean:
	rm -rf $(VENV) build *.egg-info accessd_*.deb
