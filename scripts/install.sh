#!/usr/bin/env bash
# Install everything the project needs on a Debian machine (Python >= 3.10, root or sudo):
# Quantum ESPRESSO and Debian's pseudopotentials from apt, then a virtual environment in .venv
# with torch 2.13.0 (CPU wheel) installed first and the project (editable, with its dev tools).
# Idempotent: a second call only checks.  BETE_VENV overrides the venv location.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BETE_VENV:-.venv}"
python="${PYTHON:-python3}"

# quantum-espresso-data holds Debian's pseudopotentials (/usr/share/espresso/pseudo), the default
# pseudo_family; it is only a Recommends of quantum-espresso, so it is named.
if ! command -v pw.x >/dev/null 2>&1 \
        || { [ ! -d /usr/share/espresso/pseudo ] && command -v apt-get >/dev/null 2>&1; }; then
    echo "installing Quantum ESPRESSO (apt-get install quantum-espresso quantum-espresso-data) ..." >&2
    sudo_cmd=""
    if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq quantum-espresso \
        quantum-espresso-data >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# torch first: the pinned CPU wheel; the project's own requirement is a range it satisfies.
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q -e '.[dev]' 2>&1 | grep -v -E "^WARNING: Location|^$" || true
"$venv/bin/python" -c "import workflows, betenet_model, stores, launchers" \
    || { echo "install failed: the project does not import" >&2; exit 1; }
echo "installed: $venv/bin/bete ($(pw.x -h 2>&1 </dev/null | head -0; command -v pw.x))" >&2
