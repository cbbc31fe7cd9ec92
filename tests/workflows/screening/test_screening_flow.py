import pytest

from stores.records import iter_screening_documents
from tests.workflows.screening.conftest import bcc, fcc
from workflows.screening.candidates import Candidate
from workflows.screening.flows import ScreeningFlowMaker, model_id_for, run_screening
from workflows.screening.jobs import rank_predictions

CANDS = [Candidate("al", fcc("Al", 4.04)), Candidate("cu", fcc("Cu", 3.61)),
         Candidate("nb", bcc("Nb", 3.3)), Candidate("v", bcc("V", 3.0)),
         Candidate("li", bcc("Li", 3.44))]


def test_flow_has_one_prediction_job_per_chunk(tiny_model):
    flow = ScreeningFlowMaker(chunk_size=2, acquisition="ucb").make(CANDS, str(tiny_model))
    names = [j.name for j in flow.jobs]
    assert names == ["screen_predict 1", "screen_predict 2", "screen_predict 3", "screen_rank"]
    assert flow.jobs[0].metadata["model_id"] == model_id_for(tiny_model)
    with pytest.raises(ValueError, match="acquisition"):
        ScreeningFlowMaker(acquisition="best").make(CANDS, str(tiny_model))


def test_run_screening_writes_ranked_documents(tiny_model, store):
    maker = ScreeningFlowMaker(chunk_size=2, acquisition="ucb", kappa=2.0)
    summary = run_screening(CANDS, store, maker, str(tiny_model), round_number=3,
                            campaign="c1")
    assert summary["n_screened"] == 5 and summary["written"] == 5
    ranked = summary["ranked"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4, 5]
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    for r in ranked:
        assert r["score"] == pytest.approx(r["tc_K_mean"] + 2.0 * r["tc_K_std"])
    docs = list(iter_screening_documents(store, {"campaign": "c1", "round": 3}))
    assert len(docs) == 5 and len(docs[0]["a2f_mean"]) == 51
    # running again replaces, never duplicates
    run_screening(CANDS, store, maker, str(tiny_model), round_number=3, campaign="c1")
    assert len(list(iter_screening_documents(store, {"campaign": "c1"}))) == 5


def test_rank_predictions_diversity():
    preds = [{"candidate_id": str(i), "formula": f, "structure": {}, "chemsys": f,
              "tc_K_mean": t, "tc_K_std": 1.0, "lambda_mean": 0, "lambda_std": 0,
              "omega_log_K_mean": 0, "omega_log_K_std": 0, "omega_2_K_mean": 0,
              "omega_2_K_std": 0}
             for i, (f, t) in enumerate([("Al", 9), ("Al", 8), ("Cu", 3), ("Al", 7)])]
    docs = rank_predictions(preds, acquisition="mean", model_id="m", max_per_chemsys=2)
    assert [d.candidate_id for d in docs] == ["0", "1", "2"]
    docs = rank_predictions(preds, acquisition="pi", model_id="m", threshold_K=5.0)
    assert docs[0].prob_tc_above == pytest.approx(docs[0].score)
