"""``bete query`` and ``bete plot a2f`` on documents built from real QE outputs."""

from __future__ import annotations

import csv
import io
import json

import pytest
from monty.json import jsanitize

from launchers.cli import main
from stores.config import load_job_store
from stores.schemas import ScfSummary
from tests.conftest import DATA
from workflows.qe.documents import elph_document
from workflows.qe.jobs import ELPH_BLOB_FIELDS

REQUIRED = {"formula", "lambda", "omega_log_K", "omega_2_K", "tc_allen_dynes_K",
            "dynamically_stable", "preset"}


@pytest.fixture
def store_dir(tmp_path, al_run_dir, al_run_input_set, pb_standard_input_set):
    """A store with real fast Al (coarse, stable) and standard Pb (unstable) documents."""
    docs = [
        elph_document(al_run_dir, al_run_input_set, "fast", "al-1", "a" * 64,
                      ScfSummary(pressure_kbar=5.0, is_metal=True), "6.7MaX", "crystal"),
        elph_document(DATA / "qe" / "pb-standard", pb_standard_input_set, "standard", "pb-1",
                      "b" * 64, ScfSummary(pressure_kbar=-1.2, is_metal=True), "6.7MaX",
                      "crystal"),
    ]
    store = load_job_store(tmp_path / "store")
    store.connect()
    for i, doc in enumerate(docs):
        store.update({"uuid": f"u{i}", "index": 1, "completed_at": str(i),
                      "output": jsanitize(doc.model_dump(), strict=True, enum_values=True)},
                     save={"data": list(ELPH_BLOB_FIELDS)})
    store.close()
    return str(tmp_path / "store"), docs


def _json(capsys, *args):
    assert main(["query", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_query_rows_and_filters(store_dir, capsys):
    store, (al, pb) = store_dir
    rows = {r["formula"]: r for r in _json(capsys, "--store", store)}
    assert set(rows) == {"Al", "Pb"}
    for row, doc in ((rows["Al"], al), (rows["Pb"], pb)):
        assert REQUIRED <= row.keys()
        assert row["lambda"] == pytest.approx(doc.lambda_)
        assert row["omega_log_K"] == pytest.approx(doc.omega_log_K)
        assert row["lambda_q_sum"] == pytest.approx(doc.lambda_q_sum)
        assert row["reference_sigma_Ry"] == pytest.approx(0.02)
    assert rows["Pb"]["dynamically_stable"] is False and rows["Pb"]["warnings"]
    assert [r["formula"] for r in _json(capsys, "--store", store, "--stable-only")] == ["Al"]
    assert [r["formula"] for r in _json(capsys, "--store", store, "--formula", "Pb")] == ["Pb"]
    assert [r["formula"] for r in _json(capsys, "--store", store, "--lambda-min", "1.3")] \
        == ["Pb"]
    assert [r["preset"] for r in _json(capsys, "--store", store, "--preset", "fast")] \
        == ["fast"]
    # --protocol (the old name of --preset) still works, hidden
    assert [r["preset"] for r in _json(capsys, "--store", store, "--protocol", "fast")] \
        == ["fast"]
    assert _json(capsys, "--store", store, "--tc-min", "1000") == []


def test_query_recomputes_tc_for_another_mu_star(store_dir, capsys):
    """μ* = 0.10 reproduces the stored Tc; a larger μ* lowers it; the Tc filter follows."""
    from workflows.common.physics import allen_dynes_tc

    store, (al, pb) = store_dir
    same = {r["formula"]: r for r in _json(capsys, "--store", store, "--mu-star", "0.10")}
    assert same["Pb"]["tc_allen_dynes_K"] == pytest.approx(pb.tc_allen_dynes_K, rel=1e-9)
    assert same["Al"]["tc_mcmillan_K"] == pytest.approx(al.tc_mcmillan_K, rel=1e-9)
    rows = {r["formula"]: r for r in _json(capsys, "--store", store, "--mu-star", "0.15")}
    assert rows["Pb"]["mu_star"] == 0.15
    assert rows["Pb"]["tc_allen_dynes_K"] == pytest.approx(
        allen_dynes_tc(pb.lambda_, pb.omega_log_K, pb.omega_2_K, 0.15))
    assert rows["Pb"]["tc_allen_dynes_K"] < pb.tc_allen_dynes_K
    cut = (rows["Pb"]["tc_allen_dynes_K"] + pb.tc_allen_dynes_K) / 2  # between new and stored
    stored_filter = _json(capsys, "--store", store, "--tc-min", str(cut))
    new_filter = _json(capsys, "--store", store, "--mu-star", "0.15", "--tc-min", str(cut))
    assert "Pb" in {r["formula"] for r in stored_filter}
    assert "Pb" not in {r["formula"] for r in new_filter}


def test_query_csv_and_table(store_dir, capsys):
    store, _ = store_dir
    assert main(["query", "--store", store, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["formula"] for r in rows} == {"Al", "Pb"} and REQUIRED <= rows[0].keys()
    assert main(["query", "--store", store]) == 0
    table = capsys.readouterr().out
    assert "Al" in table and "Pb" in table and "lambda" in table


def test_plot_a2f_writes_png(store_dir, tmp_path, capsys):
    store, _ = store_dir
    out = tmp_path / "al.png"
    assert main(["plot", "a2f", "Al", "--store", store, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    # several documents into a directory, one file each
    assert main(["plot", "a2f", "Al", "Pb", "--store", store, "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("a2f-*.png"))) == 2
    assert main(["plot", "a2f", "Xx", "--store", store, "--out", str(out)]) == 2
    assert "no stored calculation matches" in capsys.readouterr().err


# ------------------------------------------------------------- store access (issue 14)
def test_query_of_a_missing_store_is_an_error_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "typo" / "path"
    assert main(["query", "--store", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err
    assert not (tmp_path / "typo").exists()


def test_query_opens_the_store_without_writing_into_it(store_dir, capsys):
    """A query leaves every file of the store bit-identical (montydb's set-up included).

    A read-only SQLite reader of a WAL database may leave the ``-shm``/``-wal``
    index files SQLite itself manages; nothing else may change.
    """
    from pathlib import Path

    store, _ = store_dir
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in Path(store).rglob("*")
              if p.is_file()}
    assert {r["formula"] for r in _json(capsys, "--store", store)} == {"Al", "Pb"}
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in Path(store).rglob("*")
             if p.is_file() and not p.name.endswith(("-shm", "-wal"))}  # SQLite's WAL index
    assert after == before


def _unshare_works() -> bool:
    import shutil
    import subprocess

    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs user+mount namespaces (unshare -rm) "
                    "to mount the store read-only")
def test_query_of_a_store_on_a_read_only_file_system(store_dir):
    """The store's folder is bind-mounted read-only in a private mount namespace."""
    import os
    import subprocess
    import sys

    from tests.launchers.conftest import REPO

    store, _ = store_dir
    script = (f'mount --bind "{store}" "{store}" && mount -o remount,bind,ro "{store}" && '
              f'! touch "{store}/probe" 2>/dev/null && "{sys.executable}" -c '
              '"import sys; from launchers.cli import main; sys.exit(main(sys.argv[1:]))" '
              f'query --store "{store}" --format json')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["formula"] for r in json.loads(run.stdout)} == {"Al", "Pb"}


def test_a_writing_command_creates_the_store_and_says_so_once(tmp_path, caplog):
    import logging

    from launchers.cli.common import open_store

    new = tmp_path / "new" / "store"
    with caplog.at_level(logging.INFO, logger="stores.config"):
        open_store(str(new), write=True).close()
        open_store(str(new), write=True).close()
    said = [r.getMessage() for r in caplog.records if "creating" in r.getMessage()]
    assert said == [f"creating the embedded store {new}"]
    assert (new / ".monty.storage").is_file()


def test_preset_flag_and_its_protocol_alias():
    """``--preset`` everywhere; ``--protocol`` still works but is not advertised."""
    from launchers.cli import build_parser

    parser = build_parser()
    for argv in (["dfpt", "run", "Al.cif"], ["screen", "cands"], ["query"]):
        assert parser.parse_args([*argv, "--preset", "standard"]).preset == "standard"
        assert parser.parse_args([*argv, "--protocol", "standard"]).preset == "standard"
    assert parser.parse_args(["dfpt", "run", "Al.cif"]).preset == "fast"
    assert parser.parse_args(["query"]).preset is None
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["dfpt"]._subparsers._group_actions[0].choices["run"].format_help()
    assert "--preset" in text and "--protocol" not in text


def test_protocol_fingerprint_flag_and_its_alias():
    """``--protocol-fingerprint`` says which fingerprint; ``--fingerprint`` still works, hidden."""
    from launchers.cli import build_parser

    parser = build_parser()
    for argv in (["query"], ["export", "out"], ["train", "--data", "fast-v1", "--out", "m"],
                 ["evaluate", "--data", "fast-v1"]):
        assert parser.parse_args([*argv, "--protocol-fingerprint", "ab12"]
                                 ).protocol_fingerprint == "ab12"
        assert parser.parse_args([*argv, "--fingerprint", "ab12"]).protocol_fingerprint == "ab12"
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["export"].format_help()
    assert "--protocol-fingerprint" in text and "--fingerprint" not in text


def test_node_features_take_one_name_and_the_hyphenated_alias():
    from launchers.cli import build_parser

    parser = build_parser()
    argv = ["train", "--data", "fast-v1", "--out", "m"]
    assert parser.parse_args(argv).node_features == "onehot_mass"
    assert parser.parse_args([*argv, "--node-features", "onehot-mass"]).node_features == \
        "onehot_mass"
    assert parser.parse_args([*argv, "--node-features", "onehot_mass"]).node_features == \
        "onehot_mass"
