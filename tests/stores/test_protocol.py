"""Protocol identity: documents carry a fingerprint, training never mixes two."""

from __future__ import annotations

import json
import shutil

import pytest

from launchers.cli import main
from stores.datasets import load_fast_v1, load_records, packaged_fast_v1_dir
from stores.protocol import (
    FAST_V1_FINGERPRINT,
    FAST_V1_IDENTITY,
    derive_identity,
    directory_family_sha256,
    protocol_fingerprint_of,
    recipe_sha256,
)
from tests.stores.conftest import AL_GRIDS
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.pseudos import DEBIAN_PSEUDO_DIR
from workflows.qe.sets import ElphInputGenerator


def test_fast_v1_identity_is_the_fast_preset_with_pslibrary(pslibrary_dir):
    """The pinned hashes are what the preset and ../shared/pseudo give today."""
    resolved = ElphInputGenerator("fast").resolved_preset()
    assert FAST_V1_IDENTITY.recipe_sha256 == recipe_sha256(resolved)
    assert FAST_V1_IDENTITY.pseudo_family_sha256 == directory_family_sha256(pslibrary_dir)
    maker = ElphFlowMaker.from_preset(preset="fast", pseudo_family=str(pslibrary_dir))
    assert maker.protocol_identity(qe_version="6.7MaX").fingerprint() == FAST_V1_FINGERPRINT
    debian = ElphFlowMaker.from_preset(preset="fast", pseudo_family=str(DEBIAN_PSEUDO_DIR))
    assert debian.protocol_identity(qe_version="6.7MaX").fingerprint() != FAST_V1_FINGERPRINT
    other_mu = ElphFlowMaker.from_preset("fast", pseudo_family=str(pslibrary_dir), mu_star=0.13)
    assert other_mu.protocol_identity(qe_version="6.7MaX").fingerprint() != FAST_V1_FINGERPRINT


def test_packaged_records_carry_the_fast_v1_fingerprint():
    records = load_fast_v1(packaged_fast_v1_dir())
    assert records and {r.protocol_fingerprint for r in records} == {FAST_V1_FINGERPRINT}


def test_document_identity_and_derivation_for_older_documents(al_task_document, pslibrary_dir,
                                                             tmp_path):
    doc = al_task_document(str(pslibrary_dir), "al", "a" * 64)
    identity = doc.protocol_identity
    assert identity is not None and doc.protocol_fingerprint == identity.fingerprint()
    assert identity.pseudopotentials["Al"]["md5"] == doc.pseudopotentials["Al"].md5
    assert identity.overrides == AL_GRIDS and identity.qe_version == "6.7MaX"
    # a document written before the field: derived from the inputs it stores
    old = doc.model_dump(mode="json")
    old.pop("protocol_identity"), old.pop("protocol_fingerprint")
    derived, why_not = derive_identity(old)
    assert why_not is None and derived.fingerprint() == doc.protocol_fingerprint
    # ... unless the family directory is gone: then it says why
    moved = tmp_path / "family"
    shutil.copytree(pslibrary_dir, moved)
    gone = al_task_document(str(moved), "al", "a" * 64).model_dump(mode="json")
    gone.pop("protocol_identity"), gone.pop("protocol_fingerprint")
    shutil.rmtree(moved)
    derived, why_not = derive_identity(gone)
    assert derived is None and "does not exist" in why_not
    assert protocol_fingerprint_of(gone) is None


def test_training_refuses_to_mix_two_pseudo_families(al_task_document, write_task_documents,
                                                     pslibrary_dir, tmp_path, capsys):
    """Al with pslibrary PBE and Al with Debian LDA in one store: never one training set."""
    pbe = al_task_document(str(pslibrary_dir), "al-pbe", "a" * 64)
    lda = al_task_document(str(DEBIAN_PSEUDO_DIR), "al-lda", "b" * 64)
    assert pbe.protocol_fingerprint != lda.protocol_fingerprint
    store = str(tmp_path / "store")
    write_task_documents(store, [pbe, lda])
    with pytest.raises(ValueError, match="2 protocols") as err:
        load_records(store)
    assert pbe.protocol_fingerprint in str(err.value) and "debian-lda" in str(err.value)
    rows = load_records(store, protocol_fingerprint=lda.protocol_fingerprint[:8])
    assert [r.id for r in rows] == ["al-lda"]
    # the command line stops with the list too, and trains once one is named
    assert main(["train", "--data", store, "--out", str(tmp_path / "m"), "--members", "1",
                 "--max-epochs", "1"]) == 2
    assert "--protocol-fingerprint" in capsys.readouterr().err
    # `bete query` shows each document's fingerprint
    assert main(["query", "--store", store, "--format", "json"]) == 0
    shown = {r["source_id"]: r["protocol_fingerprint"] for r in
             json.loads(capsys.readouterr().out)}
    assert shown == {"al-pbe": pbe.protocol_fingerprint, "al-lda": lda.protocol_fingerprint}
