"""MLIP stability pre-screen with real SevenNet-0 phonons (no mock of the potential)."""

from __future__ import annotations

import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from stores import records as rec
from workflows.screening.prescreen import StabilityPrescreen, select_for_dfpt


def fcc_al() -> Structure:
    return Structure(Lattice.cubic(4.04), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                                      [0, 0.5, 0.5]]).get_primitive_structure()


def sc_al() -> Structure:
    """Simple-cubic Al: a shear-unstable cell (clearly imaginary phonons)."""
    return Structure(Lattice.cubic(2.7), ["Al"], [[0, 0, 0]])


@pytest.fixture
def ranked():
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    rows = [{"candidate_id": cid, "formula": "Al", "structure": s.as_dict(), "rank": i + 1,
             "model_id": "m", "acquisition": "mean", "round": None, "campaign": None,
             "doc_type": "screening"}
            for i, (cid, s) in enumerate((("sc", sc_al()), ("fcc", fcc_al())))]
    rec.write_screening_documents(store, rows)
    return store, rows


def test_unstable_candidate_is_skipped_and_the_reason_recorded(ranked):
    store, rows = ranked
    said: list[str] = []
    chosen = select_for_dfpt(rows, 1, StabilityPrescreen(), store,
                             {"model_id": "m", "acquisition": "mean"}, said.append)
    assert [r["candidate_id"] for r in chosen] == ["fcc"]  # the next one takes sc's place
    docs = {d["candidate_id"]: d for d in rec.iter_screening_documents(store)}
    assert docs["sc"]["prescreen"]["passed"] is False and docs["sc"]["selected"] is False
    assert docs["sc"]["prescreen"]["min_frequency_meV"] < -3
    assert "not sent to DFPT" in docs["sc"]["prescreen"]["reason"] and "sc" in said[0]
    assert docs["fcc"]["prescreen"]["passed"] is True and docs["fcc"]["selected"] is True


def test_threshold_and_switch(ranked):
    store, rows = ranked
    off = select_for_dfpt(rows, 1, StabilityPrescreen(enabled=False), store, {})
    assert [r["candidate_id"] for r in off] == ["sc"]
    lenient = select_for_dfpt(rows, 1, StabilityPrescreen(threshold_meV=-1e6), store, {})
    assert [r["candidate_id"] for r in lenient] == ["sc"]
    assert lenient[0]["prescreen"]["passed"] is True
