"""The shipped ensembles predict what they predicted when the reference file was written.

Guards refactors of the network code (``betenet_model/network.py`` and its parts): the member
spectra of four shipped bete-net cells (``tests/data/structures/bete-net``) must match
``tests/data/pretrained_predictions.json``. The file records the sha256 of every ensemble's
files; when an ensemble is retrained on purpose the test says so, and

    python tests/betenet_model/test_pretrained_predictions.py --write

rewrites the reference (check first that the change of numbers is the intended one).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "data" / "pretrained_predictions.json"
CELLS = ROOT / "tests" / "data" / "structures" / "bete-net"
ENSEMBLES = ("fast-v1-jarvis-cso", "fast-v1-cso")  # the anchored and the relu-mean head


def files_sha256(folder: Path) -> str:
    """One sha256 over the names and bytes of an ensemble's member and manifest files."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*")):
        if path.suffix in (".pt", ".json"):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def member_spectra(name: str) -> dict[str, list]:
    """Cell name → member spectra (M, G) of the shipped ensemble ``name``."""
    from pymatgen.core import Structure

    from betenet_model.pretrained import pretrained_dir
    from workflows.ml.predict import load_ensemble, predict_structures

    cells = sorted(CELLS.glob("*.cif"))
    ensemble = load_ensemble(pretrained_dir(name))
    structures = [Structure.from_file(c) for c in cells]
    preds = predict_structures(structures, ensemble, ids=[c.name for c in cells])
    return {p.id: p.members["lambda"].tolist() + p.members["tc_K"].tolist()
            + p.a2f_mean.tolist() for p in preds}


def current() -> dict:
    from betenet_model.pretrained import pretrained_dir

    return {name: {"files_sha256": files_sha256(pretrained_dir(name)),
                   "values": member_spectra(name)} for name in ENSEMBLES}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", ENSEMBLES)
def test_shipped_ensemble_predicts_as_recorded(name):
    from betenet_model.pretrained import pretrained_dir

    recorded = json.loads(REFERENCE.read_text())[name]
    assert files_sha256(pretrained_dir(name)) == recorded["files_sha256"], (
        f"the shipped ensemble {name} changed; if that was meant, rewrite the reference with "
        "`python tests/betenet_model/test_pretrained_predictions.py --write`")
    values = member_spectra(name)
    assert sorted(values) == sorted(recorded["values"])
    for cell, got in values.items():
        np.testing.assert_allclose(got, recorded["values"][cell], rtol=1e-5, atol=1e-7,
                                   err_msg=f"{name} on {cell}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    sys.path.insert(0, str(ROOT))
    torch.set_num_threads(1)
    REFERENCE.write_text(json.dumps(current(), indent=1) + "\n")
    print(f"wrote {REFERENCE}")
