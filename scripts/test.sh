#!/usr/bin/env bash
# Run the whole test suite (real-QE tests included).  Installs first if needed: the project
# (scripts/install.sh) and the Debian packages only tests use (scripts/install-test-deps.sh:
# SLURM and munge, when run as root on Debian).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install-test-deps.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "${BETE_VENV:-.venv}/bin/python" -m pytest -q "$@"
