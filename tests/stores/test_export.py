"""``bete export``: store documents → fast-v1 records → the same training rows."""

from __future__ import annotations

import json
import shutil

import pytest

from launchers.cli import main
from stores.datasets import packaged_fast_v1_dir
from stores.schemas import ScfSummary
from tests.conftest import DATA
from workflows.ml.training_data import DataOptions, load_training_data
from workflows.qe.documents import elph_document


@pytest.fixture
def two_protocol_store(tmp_path, al_task_document, write_task_documents, pslibrary_dir,
                       pb_standard_input_set):
    """Two fast Al calculations (one protocol) and a standard Pb one (another)."""
    docs = [al_task_document(str(pslibrary_dir), "al-1", "a" * 64),
            al_task_document(str(pslibrary_dir), "al-2", "c" * 64),
            elph_document(DATA / "qe" / "pb-standard", pb_standard_input_set, "standard",
                          "pb-1", "b" * 64, ScfSummary(pressure_kbar=-1.2, is_metal=True),
                          "6.7MaX", "crystal")]
    store = str(tmp_path / "store")
    write_task_documents(store, docs)
    return store, docs


def test_export_round_trip_gives_the_same_training_rows(two_protocol_store, tmp_path, capsys):
    store, (al1, al2, pb) = two_protocol_store
    out = tmp_path / "dataset"
    # two protocols and none named: stop and list them
    assert main(["export", "--store", store, str(out)]) == 2
    err = capsys.readouterr().err
    assert al1.protocol_fingerprint in err and pb.protocol_fingerprint in err
    assert main(["export", "--store", store, "--protocol-fingerprint", al1.protocol_fingerprint,
                 str(out)]) == 0
    assert "2 records written" in capsys.readouterr().out
    record = json.loads((out / "al-1.json").read_text())
    assert record["protocol_fingerprint"] == al1.protocol_fingerprint
    assert record["computed_by"]["code"] == "bete" and record["input_hash"] == "a" * 64
    assert record["parameters"]["inputs"]["ph"]  # every QE input: reproducible
    assert record["a2F"][record["reference_sigma_index"]]["sigma_Ry"] == pytest.approx(0.02)
    # the same rows, the same labels, from the folder and from the store
    from_store = load_training_data(DataOptions(source=store, preset="fast"))
    from_folder = load_training_data(DataOptions(source=str(out)))
    assert [r.id for r in from_folder] == [r.id for r in from_store] == ["al-1", "al-2"]
    for a, b in zip(from_store, from_folder, strict=True):
        assert b.protocol_fingerprint == a.protocol_fingerprint
        for key in ("lambda_", "omega_log_K", "omega_2_K", "tc_allen_dynes_K"):
            assert b.labels[key] == pytest.approx(a.labels[key], rel=1e-12)
        assert b.a2f.tolist() == a.a2f.tolist()
        assert b.site_dos.tolist() == a.site_dos.tolist()
    # a second export changes nothing
    assert main(["export", "--store", store, "--preset", "fast", str(out)]) == 0
    assert "0 records written, 2 unchanged" in capsys.readouterr().out


def test_export_refuses_a_folder_of_another_protocol(two_protocol_store, tmp_path, capsys):
    store, _ = two_protocol_store
    out = tmp_path / "fast-v1"
    out.mkdir()
    shutil.copy(packaged_fast_v1_dir() / "0.json", out / "0.json")
    assert main(["export", "--store", store, "--preset", "standard", str(out)]) == 2
    assert "a dataset holds one protocol" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["0.json"]
