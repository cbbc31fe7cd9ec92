"""The `standard` preset against published DFPT λ (no spin-orbit coupling) for fcc Al.

Runs the whole flow with the `standard` preset and the pslibrary family on fcc Al
(a = 4.04 Å), as given (no relaxation), and applies the checks of the validation run
``benchmarks/standard_preset_literature.py``: completed, stable, λ at the flow's reference
broadening (σ = 0.02 Ry) inside the spread of published values without SOC (see
docs/pseudopotentials-and-presets.md, "The standard preset against the literature"), equal to
QE's own ``lambda`` file and to λ summed over the computed q points.

Cost on 2 cores (measured, see the doc): about 13 min, so it runs with the other slow tests.
Pb and Nb (1 h 45 min and 2 h) are too long for a test: the validation run does them,
``python benchmarks/standard_preset_literature.py --pseudos DIR``.
"""

from __future__ import annotations

import pytest

from benchmarks.standard_preset_literature import check_document, structure
from stores.config import load_job_store
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_elph


@pytest.mark.qe
@pytest.mark.slow
def test_standard_al_lambda_in_published_range(tmp_path, pslibrary_dir, require_qe):
    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset(preset="standard", pseudo_family=str(pslibrary_dir),
                                      scratch_dir=str(tmp_path / "scratch"))
    [outcome] = run_elph([("Al", structure("Al"))], maker, store, reuse=False)
    assert check_document("Al", outcome.document) == []


def test_literature_checks_catch_each_failure():
    """Each check of the validation run fails on a document that breaks it."""
    good = {"status": "completed", "dynamically_stable": True, "reference_sigma_Ry": 0.02,
            "lambda_": 0.467, "lambda_q_sum": 0.468, "min_frequency_meV": 0.12,
            "broadenings": [{"sigma_Ry": 0.01, "lambda_": 0.5, "qe_lambda": 0.9},
                            {"sigma_Ry": 0.02, "lambda_": 0.467, "qe_lambda": 0.464}]}
    assert check_document("Al", good) == []
    assert check_document("Al", None) == ["not completed: None"]
    assert check_document("Al", {**good, "status": "failed", "status_reason": "ph.x"}) == [
        "not completed: ph.x"]
    [unstable] = check_document("Al", {**good, "dynamically_stable": False})
    assert unstable.startswith("unstable")
    [outside] = check_document("Al", {**good, "lambda_": 0.55, "lambda_q_sum": 0.55,
                                      "broadenings": [{"sigma_Ry": 0.02, "lambda_": 0.55,
                                                       "qe_lambda": 0.55}]})
    assert "outside the published range 0.35–0.5" in outside
    [qe] = check_document("Al", {**good, "broadenings": [{"sigma_Ry": 0.02, "lambda_": 0.467,
                                                          "qe_lambda": 0.40}]})
    assert "QE's lambda file" in qe
    [qsum] = check_document("Al", {**good, "lambda_q_sum": 0.40})
    assert "q-point sum" in qsum
    assert check_document("Nb", {**good, "lambda_": 1.256, "lambda_q_sum": 1.258,
                                 "broadenings": [{"sigma_Ry": 0.02, "lambda_": 1.256,
                                                  "qe_lambda": 1.258}]}) == []
