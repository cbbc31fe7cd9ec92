"""The `fast` preset reproduces independent fast-v1 records (real QE, a few minutes)."""

from __future__ import annotations

import json

import pytest

from stores.config import load_job_store
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_elph
from workflows.qe.structures import read_structure

pytestmark = [pytest.mark.qe, pytest.mark.slow]

# The cheapest records (1-atom cells, 1-2 min each here); the reference label is sigma = 0.02 Ry.
RECORD_IDS = ["465", "173", "245"]  # Ir, Pt, Ta


@pytest.mark.parametrize("record_id", RECORD_IDS)
def test_fast_preset_matches_record(record_id, fast_v1_dir, bete_structures_dir, pslibrary_dir,
                                    tmp_path, require_qe):
    record = json.loads((fast_v1_dir / f"{record_id}.json").read_text())
    ref = next(b for b in record["a2F"] if abs(b["sigma_Ry"] - 0.02) < 1e-9)
    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset(preset="fast", pseudo_family=str(pslibrary_dir),
                                      scratch_dir=str(tmp_path / "scratch"))
    structure = read_structure(bete_structures_dir / f"{record_id}.cif")
    doc = run_elph([(record_id, structure)], maker, store)[0].document
    assert doc["k_grid"] == record["k_grid"] and doc["q_grid"] == record["q_grid"]
    assert doc["reference_sigma_Ry"] == pytest.approx(0.02)
    assert doc["lambda_"] == pytest.approx(ref["lambda_"], rel=0.03)
    assert doc["omega_log_K"] == pytest.approx(ref["omega_log_K"], rel=0.03)
