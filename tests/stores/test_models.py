"""Ensembles in a store: put → get round trip, no duplicates, sha256 check, unknown ids."""

import base64
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from stores.models import (
    CorruptModelError,
    ModelNotFoundError,
    blob_uuid_for,
    config_digest,
    find_model,
    get_ensemble_dir,
    list_models,
    model_id_from_manifest,
    parse_model_ref,
    put_ensemble,
)
from stores.schemas import ModelDocument
from tests.betenet_model._model_helpers import tiny_config, toy_samples


@pytest.fixture(scope="module")
def ens_dir(tmp_path_factory):
    from betenet_model.ensemble import train_ensemble

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("stored") / "ens"
    train_ensemble(toy_samples(4), tiny_config(members=2, max_epochs=3), out)
    torch.set_num_threads(threads)
    return out


def _count(store, query):
    return len(list(store.query(query)))


def test_round_trip_gives_identical_predictions(ens_dir, store, tmp_path):
    from betenet_model.ensemble import Ensemble
    from workflows.screening.flows import model_id_for

    model_id = put_ensemble(store, ens_dir)
    assert model_id == model_id_for(ens_dir)
    doc = ModelDocument.model_validate(find_model(store, model_id))
    assert doc.path is None and doc.blob_uuid == blob_uuid_for(model_id)
    assert {f.name for f in doc.files} == {"ensemble.json", "member_000.pt", "member_001.pt",
                                           "member_000.json", "member_001.json"}
    assert doc.n_members == 2 and "torch" in doc.versions
    folder = get_ensemble_dir(store, model_id, cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / model_id
    assert not (folder / "checkpoints").exists()
    samples = toy_samples(4)
    with torch.no_grad():
        a = Ensemble.load(ens_dir).predict_spectra(samples)
        b = Ensemble.load(folder).predict_spectra(samples)
    assert np.array_equal(a, b)
    # an intact cache is reused, a damaged one fetched again
    mtime = (folder / "member_000.pt").stat().st_mtime_ns
    assert get_ensemble_dir(store, model_id, cache_dir=tmp_path / "cache") == folder
    assert (folder / "member_000.pt").stat().st_mtime_ns == mtime
    (folder / "member_001.pt").write_bytes(b"garbage")
    get_ensemble_dir(store, model_id, cache_dir=tmp_path / "cache")
    assert (folder / "member_001.pt").read_bytes() == (ens_dir / "member_001.pt").read_bytes()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [model_id]  # no temp left


def test_second_put_replaces_in_place(ens_dir, store):
    first = put_ensemble(store, ens_dir)
    second = put_ensemble(store, ens_dir, training_query={"source": "again"})
    assert first == second
    assert _count(store, {"output.doc_type": "model"}) == 1
    assert _count(store.additional_stores["data"], {}) == 1
    assert [d["training_query"] for d in list_models(store)] == [{"source": "again"}]


def test_folder_only_model_document_keeps_the_stored_files(ens_dir, store, tmp_path):
    """``bete al run`` writes a folder-only document of the same model: the blob stays linked."""
    from stores.models import model_document
    from stores.records import write_model_document

    model_id = put_ensemble(store, ens_dir)
    manifest = json.loads((ens_dir / "ensemble.json").read_text())
    write_model_document(store, model_document(manifest, {"source": "al"},
                                               path=str(ens_dir.resolve())))
    doc = find_model(store, model_id)
    assert doc["blob_uuid"] == blob_uuid_for(model_id) and doc["files"]
    assert doc["training_query"] == {"source": "al"} and doc["path"] == str(ens_dir.resolve())
    assert get_ensemble_dir(store, model_id, cache_dir=tmp_path / "c").is_dir()


def test_corrupt_blob_names_the_file(ens_dir, store, tmp_path):
    model_id = put_ensemble(store, ens_dir)
    data = store.additional_stores["data"]
    blob = data.query_one({"blob_uuid": blob_uuid_for(model_id)})
    for f in blob["files"]:
        if f["name"] == "member_001.pt":
            raw = bytearray(base64.b64decode(f["data"]))
            raw[-1] ^= 0xFF
            f["data"] = base64.b64encode(bytes(raw)).decode()
    blob.pop("_id", None)
    data.update(blob, key="blob_uuid")
    with pytest.raises(CorruptModelError, match=r"member_001\.pt"):
        get_ensemble_dir(store, model_id, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / model_id).exists()


def test_unknown_id_lists_the_stored_ones(ens_dir, store, tmp_path):
    with pytest.raises(ModelNotFoundError, match="stored models: none"):
        get_ensemble_dir(store, "cso-nothing", cache_dir=tmp_path)
    model_id = put_ensemble(store, ens_dir)
    with pytest.raises(ValueError, match=model_id):
        get_ensemble_dir(store, "cso-nothing", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="not a model id"):
        get_ensemble_dir(store, "../etc", cache_dir=tmp_path)


def test_unfinished_folder_is_refused(tmp_path, store, ens_dir):
    manifest = json.loads((ens_dir / "ensemble.json").read_text())
    manifest.pop("member_files")
    (tmp_path / "ensemble.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="no finished member"):
        put_ensemble(store, tmp_path)
    with pytest.raises(FileNotFoundError):
        put_ensemble(store, tmp_path / "missing")


def test_model_id_tells_configs_and_seeds_apart(ens_dir):
    manifest = json.loads((ens_dir / "ensemble.json").read_text())
    base = model_id_from_manifest(manifest)
    assert base.startswith("cso-") and "-m2-" in base
    other_seed = {**manifest, "config": {**manifest["config"], "seed": 8}}
    assert model_id_from_manifest(other_seed) != base
    # what does not change the weights does not change the id
    training = {**manifest["config"]["training"], "checkpoint_every": 1, "device": "cuda"}
    same = {**manifest["config"], "training": training, "keep_checkpoints": True}
    assert config_digest(same) == config_digest(manifest["config"])


def test_parse_model_ref():
    assert parse_model_ref("store:cso-abc-m5-123456") == "cso-abc-m5-123456"
    assert parse_model_ref("runs/cso") is None and parse_model_ref(None) is None
    assert parse_model_ref("./store:x") is None
    with pytest.raises(ValueError):
        parse_model_ref("store:")


def test_stores_package_stays_torch_free():
    code = "import sys, stores.models, stores.schemas; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
