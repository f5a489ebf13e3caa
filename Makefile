# The two commands of the README: `make demo` and `make test`.
.PHONY: bootstrap demo test lint unit services-up services-down bench

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/twinstream demo

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/python -m schemas.export --check

unit: bootstrap
	.venv/bin/python -m pytest -m "unit or agents" -q

test:
	@TWIN_BOOTSTRAP_BROWSER=1 scripts/bootstrap.sh
	$(MAKE) lint
	.venv/bin/python -m pytest -q

services-up: bootstrap
	.venv/bin/twinstream services up

services-down: bootstrap
	.venv/bin/twinstream services down
