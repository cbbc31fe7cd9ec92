"""The whole electron-phonon flow with real QE on fcc Al at coarse settings (~1 min each)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from stores.config import load_job_store
from stores.queries import iter_elph_documents
from workflows.common.physics import moments
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_elph
from workflows.qe.matdyn_parsers import parse_lambda_file
from workflows.qe.steps import marker_path

pytestmark = pytest.mark.qe

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}


def fcc_al() -> Structure:
    return Structure(Lattice.cubic(4.04), ["Al"] * 4,
                     [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


@pytest.fixture(scope="module")
def al_run(tmp_path_factory, pslibrary_dir_module):
    root = tmp_path_factory.mktemp("al")
    store = load_job_store(root / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset("fast", COARSE, str(pslibrary_dir_module),
                                      scratch_dir=str(root / "scratch"))
    outcomes = run_elph([("al-test", fcc_al())], maker, store)
    return root, store, maker, outcomes[0]


@pytest.fixture(scope="module")
def pslibrary_dir_module():
    from tests.conftest import PSLIBRARY

    if not PSLIBRARY.exists():
        pytest.skip("../shared/pseudo is not here")
    return PSLIBRARY


def test_al_document_matches_qe_lambda_file(al_run, require_qe):
    _, store, _, outcome = al_run
    doc = outcome.document
    assert doc["status"] == "completed" and doc["dynamically_stable"]
    workdir = doc["workdir"]
    qe = parse_lambda_file(f"{workdir}/lambda")
    stored = next(iter_elph_documents(store, {"input_hash": outcome.input_hash}, load=True))
    assert len(stored["a2f_spectra"]) == len(qe.rows) == 10
    for spec, row in zip(stored["a2f_spectra"], qe.rows, strict=True):
        assert spec["sigma_Ry"] == pytest.approx(row.sigma_Ry)
        lam = moments(spec["frequencies_meV"], spec["a2f"]).lambda_
        assert lam == pytest.approx(row.lambda_, rel=0.02)
    assert stored["reference_sigma_Ry"] == pytest.approx(0.02)
    assert 0.3 < stored["lambda_"] < 3.0 and stored["tc_allen_dynes_K"] > 0


def test_al_document_round_trips_through_the_store(al_run):
    from stores.schemas import ElphTaskDocument

    _, store, _, outcome = al_run
    stored = next(iter_elph_documents(store, {"input_hash": outcome.input_hash}, load=True))
    stored.pop("_job_uuid")
    again = ElphTaskDocument.model_validate(stored).model_dump(mode="json")
    original = dict(outcome.document)
    # the store keeps datetimes to the millisecond, without the zone
    assert again.pop("created_at")[:23] == original.pop("created_at")[:23]
    assert again == original
    # the arrays live in the blob store, not inline in the document
    raw = store.docs_store.query_one({"output.input_hash": outcome.input_hash,
                                      "output.doc_type": "elph_task"})
    assert "blob_uuid" in raw["output"]["a2f_spectra"]
    assert np.isfinite(stored["phdos"]["site_dos"]).all()


def test_second_run_reuses_the_stored_document(al_run):
    _, store, maker, outcome = al_run
    n_docs = store.count({"output.doc_type": "elph_task"})
    again = run_elph([("al-test", fcc_al())], maker, store)[0]
    assert again.reused and again.input_hash == outcome.input_hash
    assert store.count({"output.doc_type": "elph_task"}) == n_docs


def test_interrupted_run_continues_where_it_stopped(al_run, tmp_path):
    """Drop the later steps' markers: a rerun repeats only those steps, not pw.x or ph.x."""
    root, _, maker, outcome = al_run
    workdir = outcome.document["workdir"]
    for step in ("q2r", "matdyn_crystal", "matdyn_asr"):
        marker_path(workdir, step).unlink(missing_ok=True)
    scf_out_mtime = (root / "scratch").stat().st_mtime
    store = load_job_store(tmp_path / "fresh-store")
    store.connect()
    again = run_elph([("al-test", fcc_al())], maker, store, reuse=False)[0]
    assert not again.reused
    assert again.document["lambda_"] == pytest.approx(outcome.document["lambda_"], rel=1e-9)
    markers = json.loads(marker_path(workdir, "ph").read_text())
    assert markers["attempts"] == 1
    assert (root / "scratch").stat().st_mtime == scf_out_mtime


def test_fan_out_per_q_equals_single_ph_run(al_run, tmp_path):
    _, _, _, outcome = al_run
    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset(preset="fast", overrides=COARSE,
                                      pseudo_family=outcome.document["pseudo_family"],
                                      scratch_dir=str(tmp_path / "scratch"), fan_out_q=True)
    fan = run_elph([("al-fan", fcc_al())], maker, store)[0]
    assert fan.document["wall_times_s"].keys() >= {"ph_init", "ph_q1", "ph_q2", "ph_q3"}
    # the headline λ within 1 %; every broadening within 2 % (two ph.x runs of the same q
    # differ by ~1e-4 in frequency, which the 1/ω² of λ amplifies at this coarse grid)
    assert fan.document["lambda_"] == pytest.approx(outcome.document["lambda_"], rel=0.01)
    for a, b in zip(fan.document["broadenings"], outcome.document["broadenings"], strict=True):
        assert a["lambda_"] == pytest.approx(b["lambda_"], rel=0.02)
    # both layouts cover every irreducible q point for the q-point stability check
    q_min = outcome.document["q_point_min_frequency_meV"]
    assert q_min is not None and q_min > 0
    assert fan.document["q_point_min_frequency_meV"] == pytest.approx(q_min, rel=0.01)
    # ... and for λ summed over the computed q points (star weights from each ph_q*/ph.out)
    q_sum = outcome.document["lambda_q_sum"]
    assert q_sum is not None and q_sum > 0
    assert fan.document["lambda_q_sum"] == pytest.approx(q_sum, rel=0.02)
