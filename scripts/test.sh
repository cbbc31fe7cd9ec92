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
# -q once: a -q of the caller replaces ours (twice, pytest drops its count line)
quiet=(-q)
for arg in "$@"; do
    case "$arg" in -q | -qq | --quiet | -v | -vv | --verbose) quiet=() ;; esac
done
exec "${BETE_VENV:-.venv}/bin/python" -m pytest "${quiet[@]}" "$@"
