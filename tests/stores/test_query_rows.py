"""`workflows.common.elph_results.elph_rows`: what `bete query` prints, without the CLI."""

from __future__ import annotations

import pytest

from stores.config import load_job_store
from workflows.common.elph_results import elph_rows
from workflows.common.physics import allen_dynes_tc


def test_rows_recompute_tc_at_mu_star_and_filter_on_it(tmp_path, al_task_document,
                                                       write_task_documents, al_pseudo_dir):
    doc = al_task_document(str(al_pseudo_dir), "al", "a" * 64)
    write_task_documents(str(tmp_path / "store"), [doc])
    store = load_job_store(str(tmp_path / "store"))
    store.connect()
    try:
        (stored,) = elph_rows(store, {})
        assert stored["lambda"] == doc.lambda_ and stored["mu_star"] == doc.mu_star
        (row,) = elph_rows(store, {}, mu_star=0.2)
        tc = allen_dynes_tc(doc.lambda_, doc.omega_log_K, doc.omega_2_K, 0.2)
        assert row["mu_star"] == 0.2 and row["tc_allen_dynes_K"] == pytest.approx(tc)
        assert row["tc_allen_dynes_K"] != pytest.approx(stored["tc_allen_dynes_K"])
        assert elph_rows(store, {}, mu_star=0.2, tc_min=tc + 1) == []
        assert len(elph_rows(store, {}, mu_star=0.2, tc_max=tc + 1)) == 1
        fingerprint = row["protocol_fingerprint"]
        assert len(elph_rows(store, {}, fingerprint=fingerprint[:6])) == 1
        assert elph_rows(store, {}, fingerprint="zz") == []
    finally:
        store.close()
