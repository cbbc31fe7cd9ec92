"""A store holding task documents of schema 1.0 (preset name under ``protocol``) and of 2.0
(under ``preset``) is queried, exported and trained on as one set of documents."""

from __future__ import annotations

import json

import pytest
from monty.json import jsanitize

from launchers.cli import main
from stores.config import load_job_store
from stores.datasets import load_store_records
from stores.queries import find_elph_by_hash, iter_elph_documents
from stores.records import best_verified_tc, load_rounds, write_round
from stores.schemas import (
    ELPH_SCHEMA_VERSION,
    ActiveLearningRound,
    ElphTaskDocument,
    PhononDosDocument,
)
from workflows.ml.training_data import DataOptions, load_training_data


def _schema_1_0(doc: dict) -> dict:
    """A 2.0 task document as schema 1.0 wrote it: the preset name under ``protocol``."""
    old = dict(doc)
    old["protocol"] = old.pop("preset")
    old["schema_version"] = "1.0"
    return old


@pytest.fixture
def mixed_store(tmp_path, al_task_document, write_task_documents, al_pseudo_dir):
    """One Al task document of each schema version (same protocol, other source ids)."""
    new = jsanitize(al_task_document(str(al_pseudo_dir), "al-new", "a" * 64).model_dump(),
                    strict=True, enum_values=True)
    old = _schema_1_0(jsanitize(
        al_task_document(str(al_pseudo_dir), "al-old", "b" * 64).model_dump(),
        strict=True, enum_values=True))
    assert new["schema_version"] == ELPH_SCHEMA_VERSION != old["schema_version"]
    assert "preset" in new and "protocol" not in new and old["protocol"] == "fast"
    store = str(tmp_path / "store")
    write_task_documents(store, [new, old])
    return store, new["protocol_fingerprint"]


def test_queries_find_both_and_read_the_preset_under_its_name(mixed_store):
    store_dir, _fp = mixed_store
    store = load_job_store(store_dir, read_only=True)
    store.connect()
    try:
        found = list(iter_elph_documents(store, {"preset": "fast"}))
        assert sorted(d["source_id"] for d in found) == ["al-new", "al-old"]
        assert all(d["preset"] == "fast" and "protocol" not in d for d in found)
        assert list(iter_elph_documents(store, {"preset": "standard"})) == []
        assert find_elph_by_hash(store, "b" * 64)["preset"] == "fast"
        assert best_verified_tc(store, "fast") is not None
        assert best_verified_tc(store, "standard") is None
    finally:
        store.close()
    rows = load_store_records(load_job_store(store_dir, read_only=True), preset="fast")
    assert sorted(r.id for r in rows) == ["al-new", "al-old"]
    assert not load_store_records(load_job_store(store_dir, read_only=True), preset="standard")


def test_cli_query_export_and_training_rows_take_both(mixed_store, tmp_path, capsys):
    store, fp = mixed_store
    assert main(["query", "--store", store, "--preset", "fast", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted((r["source_id"], r["preset"], r["protocol_fingerprint"]) for r in rows) == [
        ("al-new", "fast", fp), ("al-old", "fast", fp)]
    out = tmp_path / "dataset"
    assert main(["export", "--store", store, "--preset", "fast", str(out)]) == 0
    assert "2 records written" in capsys.readouterr().out
    record = json.loads((out / "al-old.json").read_text())
    assert record["protocol"]["name"] == "fast" and record["protocol_fingerprint"] == fp
    from_store = load_training_data(DataOptions(source=store, preset="fast"))
    from_folder = load_training_data(DataOptions(source=str(out)))
    assert [r.id for r in from_store] == [r.id for r in from_folder] == ["al-new", "al-old"]


def test_schema_1_0_documents_validate_into_the_models(al_task_document, al_pseudo_dir):
    doc = al_task_document(str(al_pseudo_dir), "al", "c" * 64)
    old = _schema_1_0(doc.model_dump())
    assert ElphTaskDocument.model_validate(old).preset == "fast"
    phdos = {"input_hash": "d" * 64, "formula": "Al", "nsites": 1, "structure": {},
             "q_grid": [2, 2, 2], "k_grid": [4, 4, 4], "min_frequency_meV": 0.0,
             "dynamically_stable": True, "stability_threshold_meV": -0.5, "workdir": "/tmp",
             "phdos": {"frequencies_meV": [], "total": [], "site_dos": []}}
    assert PhononDosDocument.model_validate({**phdos, "protocol": "fast"}).preset == "fast"
    assert PhononDosDocument.model_validate({**phdos, "preset": "fast"}).preset == "fast"


def test_round_documents_of_both_versions_read_the_verification_preset(tmp_path):
    store = load_job_store(tmp_path / "store")
    store.connect()
    try:
        write_round(store, {**ActiveLearningRound(round=1, preset="fast").model_dump(
            mode="json"), "schema_version": "1.0"})
        old = load_rounds(store)[0]
        old["protocol"] = old.pop("preset")        # as schema 1.0 wrote it
        write_round(store, old)
        write_round(store, ActiveLearningRound(round=2, preset="standard"))
        rounds = load_rounds(store)
    finally:
        store.close()
    assert [(r["round"], r["preset"]) for r in rounds] == [(1, "fast"), (2, "standard")]
    assert ActiveLearningRound.model_validate(rounds[0]).preset == "fast"
