"""Store specs: embedded default, MongoDB from YAML/URI, secrets, store check."""

from __future__ import annotations

import logging
import os
import socket
import time

import numpy as np
import pytest
import yaml
from jobflow import Flow, JobStore, job, run_locally
from maggma.stores import GridFSStore, MongoStore, MontyStore, S3Store

from stores.check import StoreUnreachableError, check_store, count_by_doc_type, ping_store
from stores.config import (
    StoreConfigError,
    describe_store_spec,
    embedded_store,
    expand_env,
    load_job_store,
    mask_secrets,
    mask_text,
    resolve_store_spec,
    store_secrets,
)

SECRET = "pa55-w0rd-xyz"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mongo_spec(port: int = 27017, **extra) -> dict:
    common = {"host": "db.example.org", "port": port, "database": "bete",
              "username": "ann", "password": "${BETE_TEST_DB_PASSWORD}", **extra}
    return {
        "docs_store": {"type": "MongoStore", "collection_name": "outputs", **common},
        "additional_stores": {"data": {"type": "GridFSStore", "collection_name": "blobs",
                                       **common}},
    }


@job(data=["a2f"])
def _spectrum(scale: float) -> dict:
    return {"doc_type": "elph_task", "a2f": np.ones(8) * scale}


@job
def _model() -> dict:
    return {"doc_type": "model"}


@job
def _plain() -> float:
    return 1.0


# ------------------------------------------------------------------------- embedded
def test_directory_gives_embedded_montystore(tmp_path):
    store = load_job_store(tmp_path / "db")
    assert isinstance(store, JobStore)
    assert isinstance(store.docs_store, MontyStore)
    assert isinstance(store.additional_stores["data"], MontyStore)
    assert (tmp_path / "db").is_dir()
    assert resolve_store_spec(tmp_path / "db") == {"type": "embedded",
                                                   "path": str(tmp_path / "db")}


def test_default_spec_comes_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("BETE_STORE", str(tmp_path / "from-env"))
    assert resolve_store_spec()["path"] == str(tmp_path / "from-env")
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"store: {tmp_path / 'from-file'}\n")
    monkeypatch.delenv("BETE_STORE")
    monkeypatch.setenv("BETE_CONFIG_FILE", str(settings))
    assert resolve_store_spec()["path"] == str(tmp_path / "from-file")


def test_a_plain_file_is_refused(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(StoreConfigError, match="not a YAML store spec"):
        load_job_store(bad)
    with pytest.raises(StoreConfigError, match="does not exist"):
        load_job_store(tmp_path / "missing.yaml")
    (tmp_path / "odd.yaml").write_text("foo: 1\n")
    with pytest.raises(StoreConfigError, match="no docs_store"):
        load_job_store(tmp_path / "odd.yaml")


# -------------------------------------------------------------------------- mongodb
def test_yaml_spec_with_env_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("BETE_TEST_DB_PASSWORD", SECRET)
    path = tmp_path / "bete_store.yaml"
    path.write_text(yaml.safe_dump(_mongo_spec()))
    store = load_job_store(path)
    assert isinstance(store.docs_store, MongoStore)
    assert isinstance(store.additional_stores["data"], GridFSStore)
    assert store.docs_store.password == SECRET
    assert store_secrets(store) == {SECRET}
    described = describe_store_spec(path)
    assert described["kind"] == "mongodb"
    assert described["address"] == "mongodb://db.example.org:27017/bete (user ann)"
    assert SECRET not in repr(described)
    assert SECRET not in repr(mask_secrets(resolve_store_spec(path)))


def test_unset_variable_is_named_not_guessed(tmp_path, monkeypatch):
    monkeypatch.delenv("BETE_TEST_DB_PASSWORD", raising=False)
    path = tmp_path / "bete_store.yaml"
    path.write_text(yaml.safe_dump(_mongo_spec()))
    with pytest.raises(StoreConfigError, match=r"BETE_TEST_DB_PASSWORD is not set"):
        load_job_store(path)
    assert expand_env("${BETE_TEST_DB_PASSWORD:-fallback}") == "fallback"


def test_credentials_file_is_merged_and_checked(tmp_path, caplog):
    creds = tmp_path / "creds.yaml"
    creds.write_text(f"username: bob\npassword: {SECRET}\n")
    os.chmod(creds, 0o644)
    spec = _mongo_spec()
    for store in (spec["docs_store"], spec["additional_stores"]["data"]):
        del store["username"], store["password"]
    spec["credentials_file"] = str(creds)
    path = tmp_path / "bete_store.yaml"
    path.write_text(yaml.safe_dump(spec))
    with caplog.at_level(logging.WARNING, logger="stores.config"):
        store = load_job_store(path)
    assert store.docs_store.username == "bob"
    assert store.additional_stores["data"].password == SECRET
    assert "readable by other users" in caplog.text
    assert SECRET not in caplog.text


def test_jobflow_and_bete_settings_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("BETE_TEST_DB_PASSWORD", SECRET)
    jobflow_file = tmp_path / "jobflow.yaml"
    jobflow_file.write_text(yaml.safe_dump({"JOB_STORE": _mongo_spec()}))
    settings = tmp_path / "bete_settings.yaml"
    settings.write_text("store: jobflow.yaml\nnprocs: 4\n")  # relative to the settings file
    assert isinstance(load_job_store(settings).docs_store, MongoStore)


def test_mongodb_uri_and_masking():
    uri = f"mongodb://ann:{SECRET}@db.example.org:27018/campaign"
    store = load_job_store(uri)
    assert isinstance(store.docs_store, MongoStore)
    assert isinstance(store.additional_stores["data"], GridFSStore)
    assert store.docs_store.database == "campaign"
    assert describe_store_spec(uri)["address"] == "mongodb://db.example.org:27018/campaign"
    assert mask_text(f"failed for {uri}") == \
        "failed for mongodb://ann:****@db.example.org:27018/campaign"
    assert SECRET not in repr(mask_secrets({"docs_store": {"uri": uri}}))


def test_s3_data_store_spec(tmp_path):
    spec = _mongo_spec(password="x")
    spec["docs_store"]["password"] = ""
    spec["additional_stores"]["data"] = {
        "type": "S3Store", "bucket": "bete-blobs", "endpoint_url": "https://s3.example.org",
        "s3_profile": {"aws_access_key_id": "AKIA", "aws_secret_access_key": SECRET},
        "key": "blob_uuid",
        "index": {"type": "MongoStore", "host": "db.example.org", "database": "bete",
                  "collection_name": "blobs_index", "key": "blob_uuid"},
    }
    store = load_job_store(spec)
    assert isinstance(store.additional_stores["data"], S3Store)
    assert SECRET in store_secrets(store)
    location = describe_store_spec(spec)["stores"]["data"]["location"]
    assert location.startswith("s3://bete-blobs at https://s3.example.org")
    assert SECRET not in repr(mask_secrets(spec))


# ----------------------------------------------------------------------- store check
def test_check_counts_documents_by_doc_type(tmp_path):
    store = embedded_store(tmp_path / "db")
    flow = Flow([_spectrum(1.0), _spectrum(2.0), _model(), _plain()])
    run_locally(flow, store=store, ensure_success=True)
    store.docs_store.update({"uuid": "imported", "index": 1, "doc_type": "fast-v1-record"},
                            key=["uuid", "index"])
    report = check_store(tmp_path / "db")
    assert report.reachable and report.kind == "embedded"
    assert report.counts == {"(no doc_type)": 1, "elph_task": 2, "fast-v1-record": 1,
                             "model": 1}
    assert report.total == 5
    assert report.blobs == {"data": 2}
    store.connect()
    assert count_by_doc_type(store.docs_store) == report.counts


def test_check_does_not_create_a_missing_embedded_store(tmp_path):
    report = check_store(tmp_path / "nothing-here")
    assert report.note and not (tmp_path / "nothing-here").exists()
    assert report.total == 0


def test_unreachable_mongodb_is_one_masked_line(monkeypatch):
    port = _closed_port()
    uri = f"mongodb://ann:{SECRET}@127.0.0.1:{port}/bete"
    start = time.monotonic()
    with pytest.raises(StoreUnreachableError) as info:
        check_store(uri, timeout_s=0.5)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}/bete" in message
    assert SECRET not in message
    with pytest.raises(StoreUnreachableError):
        ping_store(uri, timeout_s=0.5)


def test_unreachable_yaml_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("BETE_TEST_DB_PASSWORD", SECRET)
    spec = _mongo_spec(port=_closed_port())
    for store in (spec["docs_store"], spec["additional_stores"]["data"]):
        store["host"] = "127.0.0.1"
    path = tmp_path / "bete_store.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(StoreUnreachableError, match=r"docs store at mongodb://127\.0\.0\.1:"):
        check_store(path, timeout_s=0.5)


# ------------------------------------------------------------------- real MongoDB
@pytest.mark.mongo
def test_real_mongodb_roundtrip():
    uri = os.environ.get("BETE_TEST_MONGODB_URI")
    if not uri:
        pytest.skip("set BETE_TEST_MONGODB_URI=mongodb://host:port/db to run against MongoDB")
    store = load_job_store(uri)
    store.connect()
    store.docs_store.remove_docs({})
    store.additional_stores["data"].remove_docs({})
    run_locally(Flow([_spectrum(3.0), _model()]), store=store, ensure_success=True)
    report = check_store(uri)
    assert report.counts == {"elph_task": 1, "model": 1}
    assert report.blobs == {"data": 1}
