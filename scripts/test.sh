#!/usr/bin/env bash
# Run the whole test suite (real-QE tests included).  Installs first if needed.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "${BETE_VENV:-.venv}/bin/python" -m pytest -q "$@"
