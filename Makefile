# The two commands of the README: `make run` (the main job) and `make test`.
.PHONY: run test

run:
	bash scripts/setup.sh
	.venv/bin/python run.py

test:
	bash scripts/setup.sh --test
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q
