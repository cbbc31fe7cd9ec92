"""Fixtures of the store tests: task documents of the real Al run, written to a store."""

from __future__ import annotations

import pytest
from monty.json import jsanitize
from pymatgen.core import Lattice, Structure

from tests.conftest import FCC_SITES

AL_GRIDS = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
            "ecutwfc": 25, "ecutrho": 200}
"""The grids of the run in tests/data/qe/al (fast preset otherwise)."""


@pytest.fixture
def al_task_document(al_run_dir):
    """``make(family, source_id, input_hash)``: the task document of tests/data/qe/al."""
    from stores.schemas import ScfSummary
    from workflows.qe.documents import elph_document
    from workflows.qe.sets import ElphInputGenerator

    def make(family: str, source_id: str, input_hash: str):
        gen = ElphInputGenerator("fast", AL_GRIDS, family=family)
        input_set = gen.get_input_set(Structure(Lattice.cubic(4.04), ["Al"] * 4, FCC_SITES))
        return elph_document(al_run_dir, input_set, "fast", source_id, input_hash,
                             ScfSummary(pressure_kbar=1.0, is_metal=True), "6.7MaX", "crystal",
                             overrides=AL_GRIDS)

    return make


@pytest.fixture
def write_task_documents():
    """``write(store_dir, docs)``: documents (models or dicts) as job outputs of a store."""
    from stores.config import load_job_store
    from stores.schemas import ELPH_BLOB_FIELDS

    def write(store_dir: str, docs: list) -> None:
        store = load_job_store(store_dir)
        store.connect()
        for i, doc in enumerate(docs):
            out = doc if isinstance(doc, dict) else jsanitize(doc.model_dump(), strict=True,
                                                              enum_values=True)
            store.update({"uuid": f"u{i}", "index": 1, "completed_at": str(i), "output": out},
                         save={"data": list(ELPH_BLOB_FIELDS)})
        store.close()

    return write
