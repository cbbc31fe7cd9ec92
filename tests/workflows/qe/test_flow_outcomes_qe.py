"""Insulators and dynamically unstable cells end with a stored document, not a crash (real QE)."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from stores.config import load_job_store
from stores.queries import iter_elph_documents
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_elph
from workflows.qe.steps import marker_path

pytestmark = pytest.mark.qe

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}


def _run(tmp_path, pslibrary_dir, structure, name):
    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset("fast", COARSE, str(pslibrary_dir),
                                      scratch_dir=str(tmp_path / "scratch"))
    outcome = run_elph([(name, structure)], maker, store)[0]
    return store, outcome


def test_insulator_gets_a_document_and_no_phonon_run(tmp_path, pslibrary_dir, require_qe):
    si = Structure(Lattice.cubic(5.43), ["Si"] * 8,
                   [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5],
                    [.25, .25, .25], [.75, .75, .25], [.75, .25, .75], [.25, .75, .75]])
    store, outcome = _run(tmp_path, pslibrary_dir, si, "si")
    doc = outcome.document
    assert doc["status"] == "insulator"
    assert doc["scf"]["band_gap_eV"] > 0.3 and doc["scf"]["is_metal"] is False
    assert doc["lambda_"] is None and doc["a2f_spectra"] == []
    workdir = doc["workdir"]
    assert not marker_path(workdir, "ph").exists() and not marker_path(workdir, "scf").exists()
    stored = list(iter_elph_documents(store, {"status": "insulator"}))
    assert [d["formula"] for d in stored] == ["Si"]


def test_unstable_cell_is_stored_as_unstable(tmp_path, pslibrary_dir, require_qe):
    """Simple-cubic Al has imaginary phonons: the document says so instead of crashing."""
    sc_al = Structure(Lattice.cubic(2.7), ["Al"], [[0, 0, 0]])
    store, outcome = _run(tmp_path, pslibrary_dir, sc_al, "sc-al")
    doc = outcome.document
    assert doc["status"] == "unstable" and doc["dynamically_stable"] is False
    assert doc["min_frequency_meV"] < -0.5
    assert any("unstable" in w for w in doc["warnings"])
    assert list(iter_elph_documents(store, {"dynamically_stable": False}))
