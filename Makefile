# The two commands: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= demo/biobank.db
DEMO_URL := sqlite:///$(DEMO_DB)
DEMO_KEY := demo/biobank.key
BIOBANK := bbmri-eric:ID:ES_PRIMAGE
STS := examples/data/sts_001
DEMO_ARGS = --db $(DEMO_URL) --key-file $(DEMO_KEY)
ARGO_DICTIONARY ?= ../shared/reference/argo

.PHONY: demo test bench bench-scale lint install system-deps clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "imaging-biobank needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## demo: build a demo imaging biobank from real DICOM files on embedded SQLite
# (exit code 1 from ingest means some files were reported, e.g. pydicom's non-DICOM files)
demo: install
	@mkdir -p $(dir $(DEMO_DB))
	$(BIN)/imaging-biobank init --db $(DEMO_URL)
	$(BIN)/imaging-biobank register examples/primage.yaml --db $(DEMO_URL)
	@test -f $(DEMO_KEY) || $(BIN)/imaging-biobank keygen $(DEMO_KEY)
	$(BIN)/imaging-biobank ingest $(STS)/CT $(STS)/MR_T1 $(STS)/PET --db $(DEMO_URL) \
		--key-file $(DEMO_KEY) -c $(BIOBANK):collection:NB_IMAGING --report demo/ingest-sts.jsonl
	$(BIN)/imaging-biobank ingest $$($(BIN)/python scripts/demo_data.py) --db $(DEMO_URL) \
		--key-file $(DEMO_KEY) -c $(BIOBANK):collection:REFERENCE_IMAGING \
		--report demo/ingest-reference.jsonl; test $$? -le 1
	$(BIN)/imaging-biobank import donors examples/samples/donors.csv -c NB_TISSUE $(DEMO_ARGS)
	$(BIN)/imaging-biobank import samples examples/samples/samples.csv -c NB_TISSUE $(DEMO_ARGS)
	$(BIN)/imaging-biobank import events examples/samples/events.csv -c NB_CLINICAL $(DEMO_ARGS)
	$(BIN)/imaging-biobank import biomarkers examples/samples/biomarkers.csv -c NB_MOLECULAR $(DEMO_ARGS)
	$(BIN)/imaging-biobank import form examples/forms/neuroblastoma.csv -c NB_CLINICAL --db $(DEMO_URL)
	$(BIN)/imaging-biobank import records examples/forms/neuroblastoma_records.csv -c NB_CLINICAL $(DEMO_ARGS)
	$(BIN)/imaging-biobank import form examples/forms/dipg.csv -c DIPG_CLINICAL --db $(DEMO_URL)
	$(BIN)/imaging-biobank import records examples/forms/dipg_records.csv -c DIPG_CLINICAL $(DEMO_ARGS)
	$(BIN)/imaging-biobank import segmentation $(STS)/CT/mask $(STS)/MR_T1/mask $(STS)/PET/mask \
		--db $(DEMO_URL)
	$(BIN)/imaging-biobank analyse radiomics -c NB_IMAGING --config examples/radiomics.yaml \
		--db $(DEMO_URL)
	$(BIN)/imaging-biobank check -c NB_IMAGING --db $(DEMO_URL); test $$? -le 1
	$(BIN)/imaging-biobank deid $(STS)/CT $(STS)/MR_T1 $(STS)/PET demo/deid --key-file $(DEMO_KEY) \
		-o modified-dates,patient-characteristics
	$(BIN)/imaging-biobank deid verify demo/deid --against $(STS)
	$(BIN)/imaging-biobank stats --db $(DEMO_URL)
	$(BIN)/imaging-biobank linkage --db $(DEMO_URL)
	$(BIN)/imaging-biobank query "modality = CT and body_part = ABDOMEN and slice_thickness <= 3 \
		and material_type = TISSUE_FROZEN and diagnosis in C74" --role data_manager --db $(DEMO_URL)
	$(BIN)/imaging-biobank query "body_part = ABDOMEN" --by modality --role data_manager \
		--db $(DEMO_URL)
	$(BIN)/imaging-biobank export directory demo/export/directory.xlsx --db $(DEMO_URL)
	$(BIN)/imaging-biobank export directory demo/export/directory-emx2 --db $(DEMO_URL)
	$(BIN)/imaging-biobank export fhir demo/export/fhir $(DEMO_ARGS)
	$(BIN)/imaging-biobank export omop sqlite:///demo/export/omop.db --db $(DEMO_URL)
	$(BIN)/imaging-biobank export rdf demo/export/biobank.ttl --db $(DEMO_URL)
	$(BIN)/imaging-biobank sparql "SELECT ?modality ?part (COUNT(?s) AS ?series) WHERE { \
		?s a ib:ImagingSeries ; ib:modality ?modality ; ib:bodyPart ?part ; \
		ib:bodyPart/ib:covers?/skos:broader* bp:ABDOMEN } GROUP BY ?modality ?part" --db $(DEMO_URL)
	@# the ARGO dictionary is AGPL-3.0 and not shipped: the export needs a copy of it
	@if [ -d $(ARGO_DICTIONARY) ]; then \
		$(BIN)/imaging-biobank export argo demo/export/argo --dictionary $(ARGO_DICTIONARY) \
			--db $(DEMO_URL); test $$? -le 1; \
	else echo "ARGO export left out: no ARGO dictionary at $(ARGO_DICTIONARY)"; fi
	@umask 077; for role in researcher data_manager; do \
		$(BIN)/imaging-biobank token create demo-$$role --role $$role --replace --db $(DEMO_URL) \
			> demo/$$role.token || exit 1; done
	@echo "Demo database: $(DEMO_DB) (reports of files not ingested: demo/*.jsonl);"
	@echo "its exports (Directory, FHIR, OMOP, RDF, ARGO): demo/export;"
	@echo "de-identified copies of STS_001: demo/deid. Try:"
	@echo "  $(BIN)/imaging-biobank show collection $(BIOBANK):collection:NB_IMAGING --db $(DEMO_URL)"
	@echo "Browse it: $(BIN)/imaging-biobank serve $(DEMO_ARGS), open http://127.0.0.1:8000/"
	@echo "  and sign in with the token in demo/researcher.token (or demo/data_manager.token)"

## system-deps: the servers the tests start (PostgreSQL), from Debian packages
system-deps:
	@scripts/install-test-deps.sh

## test: install what the tests need and run them all
test: install system-deps
	$(BIN)/python -m pytest

## bench: the benchmarks, each against a named baseline in the same run
bench: install system-deps
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/ingest.py --files 5000 --decay 100000
	$(BIN)/python benchmarks/deid.py --files 2000
	$(BIN)/python benchmarks/query.py

## bench-scale: ingest rate, client memory and cohort query times at 10^4 and 10^5 instances
# (SQLite, PostgreSQL, PostgreSQL with a local Dask cluster); rewrites docs/performance.*
# (10^6: .venv/bin/python benchmarks/scale.py --sizes 10000,100000,1000000)
bench-scale: install system-deps
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/scale.py --sizes 10000,100000

## lint: ruff and mypy on the package
lint: install
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
