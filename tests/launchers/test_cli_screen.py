"""bete screen and bete al run/status/report, with a tiny ensemble and a fake DFPT seam."""

import csv
import json

import pytest

from launchers.cli import main
from tests.conftest import PSLIBRARY
from tests.workflows.screening.conftest import FakeDFPT, bcc, fcc

COARSE = json.dumps({"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
                     "ecutwfc": 25, "ecutrho": 200})


@pytest.fixture
def cands(tmp_path):
    if not PSLIBRARY.exists():
        pytest.skip("../shared/pseudo is not here")
    d = tmp_path / "cands"
    d.mkdir()
    fcc("Al", 4.04).to(filename=str(d / "Al.cif"))
    fcc("Al", 4.10).to(filename=str(d / "Al_big.cif"))
    fcc("Cu", 3.61).to(filename=str(d / "Cu.cif"))
    bcc("Nb", 3.30).to(filename=str(d / "Nb.cif"))
    (d / "junk.cif").write_text("nothing\n")
    return d


@pytest.fixture
def fake(monkeypatch):
    f = FakeDFPT()
    monkeypatch.setattr("workflows.qe.local.run_flow_locally", f)
    return f


def test_screen_json_has_ranked_rows_and_reasons(model, cands, tmp_path, capsys):
    rc = main(["screen", str(cands), "--model", str(model), "--store", str(tmp_path / "s"),
               "--top-k", "2", "--acquisition", "ucb", "--kappa", "2", "--format", "json",
               "--pseudos", str(PSLIBRARY)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    ranked = [r for r in out if r["status"] == "ranked"]
    rejected = {r["candidate_id"]: r["reason"] for r in out if r["status"] == "rejected"}
    assert [r["rank"] for r in ranked] == [1, 2]
    assert ranked[0]["score"] >= ranked[1]["score"]
    assert rejected == {"junk": "unreadable", "Al_big": "duplicate"}


def test_screen_table_and_csv(model, cands, tmp_path, capsys):
    out_csv = tmp_path / "rank.csv"
    rc = main(["screen", str(cands), "--model", str(model), "--store", str(tmp_path / "s"),
               "--top-k", "5", "--format", "csv", "--out", str(out_csv), "--acquisition", "pi",
               "--max-per-chemsys", "1", "--chunk-size", "1", "--pseudos", str(PSLIBRARY)])
    assert rc == 0
    printed = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(printed) == 3 and printed[0]["rank"] == "1"
    rows = list(csv.DictReader(out_csv.open()))
    assert {r["status"] for r in rows} == {"ranked", "rejected"}


def test_screen_verify_attaches_computed_values(model, cands, tmp_path, capsys, fake):
    rc = main(["screen", str(cands), "--model", str(model), "--store", str(tmp_path / "s"),
               "--top-k", "1", "--format", "json", "--verify", "--override", COARSE,
               "--pseudos", str(PSLIBRARY)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(fake.calls) == 1
    top = out[0]
    assert top["verification"]["status"] == "completed"
    assert top["verification"]["tc_K_computed"] is not None
    assert top["verification"]["tc_K_predicted"] == pytest.approx(top["tc_K_mean"])


def test_al_run_status_report(model, cands, tmp_path, capsys, fake):
    store = str(tmp_path / "alstore")
    args = ["al", "run", "--store", store, "--candidates", str(cands), "--rounds", "2",
            "--top-k", "1", "--model", str(model), "--override", COARSE, "--pseudos",
            str(PSLIBRARY), "--members", "2", "--max-epochs", "3",
            "--models-dir", str(tmp_path / "models")]
    for kv in ("mul=4", "embed_dim=8", "radial_neurons=8"):
        args += ["--network", kv]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["al", "status", "--store", store, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["round"] for r in rows] == [1, 2]
    for r in rows:
        for key in ("round", "model_id", "n_screened", "submitted", "verified", "hits_tc5",
                    "mae_tc_K_new", "best_tc_K"):
            assert key in r
        for key in ("n_screened", "submitted", "verified", "hits_tc5"):
            assert isinstance(r[key], int)
        assert r["submitted"] == r["verified"] == 1 and len(r["verified_ids"]) == 1
    assert rows[0]["n_screened"] == 3 and rows[1]["n_screened"] == 2
    png = tmp_path / "al.png"
    assert main(["al", "report", "--store", store, "--out", str(png)]) == 0
    text = capsys.readouterr().out
    assert "round 1" in text and "round 2" in text and png.stat().st_size > 5000


def test_al_submit_waits_for_workers(model, cands, tmp_path, capsys, mongomock_lp_file):
    store = str(tmp_path / "alstore")
    rc = main(["al", "run", "--store", store, "--candidates", str(cands), "--top-k", "2",
               "--model", str(model), "--override", COARSE, "--pseudos", str(PSLIBRARY),
               "--submit", "--launchpad", str(mongomock_lp_file)])
    assert rc == 0
    capsys.readouterr()
    main(["al", "status", "--store", store, "--format", "json"])
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "waiting" and row["submitted"] == 2 and row["verified"] == 0
    from launchers.fireworks import close_launchpad, load_launchpad

    lp = load_launchpad(mongomock_lp_file)
    try:
        assert lp.workflows.count_documents({}) == 2
    finally:
        close_launchpad(lp)


def test_screen_submit_hands_the_top_k_to_the_launchpad_once(model, cands, tmp_path, capsys,
                                                             mongomock_lp_file):
    """``bete screen --submit`` runs the workflow ``bete al run --submit`` runs: the top-k go
    to the LaunchPad (pending), and a second screening does not add them again."""
    from launchers.fireworks import close_launchpad, load_launchpad

    args = ["screen", str(cands), "--model", str(model), "--store", str(tmp_path / "s"),
            "--top-k", "1", "--format", "json", "--submit", "--launchpad",
            str(mongomock_lp_file), "--override", COARSE, "--pseudos", str(PSLIBRARY),
            "--no-prescreen"]
    for added in ("submitted", "already on"):
        assert main(args) == 0
        out = capsys.readouterr()
        top = json.loads(out.out)[0]
        assert top["verification"]["status"] == "pending" and top["verification"]["error"] is None
        assert f"{top['candidate_id']} ({top['formula']}): {added} the LaunchPad" in out.err
    lp = load_launchpad(mongomock_lp_file)
    try:
        assert lp.workflows.count_documents({}) == 1
    finally:
        close_launchpad(lp)


def test_errors_are_one_line(tmp_path, capsys, cands):
    rc = main(["screen", str(tmp_path / "missing"), "--model", str(tmp_path),
               "--store", str(tmp_path / "s")])
    assert rc == 2 and "ensemble" in capsys.readouterr().err
    rc = main(["al", "report", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "x.png")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # a report never creates a store
    from stores.config import load_job_store

    load_job_store(tmp_path / "s").connect()  # an empty store: no round yet
    rc = main(["al", "report", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "x.png")])
    assert rc == 2 and "bete al run" in capsys.readouterr().err


def test_screen_with_a_stored_model(model, cands, tmp_path, capsys):
    from stores.config import load_job_store
    from stores.models import put_ensemble

    store = load_job_store(str(tmp_path / "s"))
    store.connect()
    model_id = put_ensemble(store, model)
    store.close()
    rc = main(["screen", str(cands), "--model", f"store:{model_id}", "--store",
               str(tmp_path / "s"), "--top-k", "2", "--format", "json",
               "--pseudos", str(PSLIBRARY)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    ranked = [r for r in out if r["status"] == "ranked"]
    assert ranked and {r["model_id"] for r in ranked} == {model_id}


# ------------------------------------------- one structure check for every command (issue 14)
def _bad_cells():
    from pymatgen.core import Lattice, Structure

    cubic = Lattice.cubic(4.0)
    magnetic = fcc("Al", 4.04)
    magnetic.add_site_property("magmom", [1.0] * len(magnetic))
    return {
        "close": Structure(cubic, ["Al", "Al"], [[0, 0, 0], [0.025, 0, 0]]),
        "oganesson": Structure(cubic, ["Og"], [[0, 0, 0]]),
        "alloy": Structure(cubic, [{"Al": 0.5, "Mg": 0.5}], [[0, 0, 0]]),
        "magnetic": magnetic,
    }


@pytest.fixture
def bad_cells(tmp_path):
    """Four cells every structure-reading command must refuse, and the shared verdicts."""
    from workflows.qe.structures import StructureCheckError, check_structure

    folder = tmp_path / "bad"
    folder.mkdir()
    verdicts = {}
    for name, cell in _bad_cells().items():
        (folder / f"{name}.json").write_text(cell.to_json())
        with pytest.raises(StructureCheckError) as info:
            check_structure(cell)
        verdicts[name] = (info.value.reason, str(info.value))
    assert {r for r, _ in verdicts.values()} == {"overlapping_atoms", "unsupported_element",
                                                 "disordered", "magnetic"}
    return folder, verdicts


@pytest.mark.parametrize("command", [["dfpt", "run"], ["predict"]])
def test_file_commands_refuse_bad_cells_with_the_shared_message(command, bad_cells, tmp_path,
                                                                capsys):
    folder, verdicts = bad_cells
    for name, (_, message) in verdicts.items():
        path = folder / f"{name}.json"
        extra = ["--store", str(tmp_path / "s")] if command[0] == "dfpt" else []
        assert main([*command, str(path), *extra]) == 2, name
        out, err = capsys.readouterr()
        assert out == "" and err.strip() == f"bete: error: {path}: {message}"
    assert not (tmp_path / "s").exists() or command[0] == "dfpt"


def test_screen_rejects_bad_cells_with_the_shared_reason_and_message(model, cands, bad_cells,
                                                                     tmp_path, capsys):
    folder, verdicts = bad_cells
    for name in verdicts:
        (cands / f"{name}.json").write_text((folder / f"{name}.json").read_text())
    rc = main(["screen", str(cands), "--model", str(model), "--store", str(tmp_path / "s"),
               "--format", "json", "--pseudos", str(PSLIBRARY)])
    assert rc == 0
    rejected = {r["candidate_id"]: (r["reason"], r["detail"])
                for r in json.loads(capsys.readouterr().out) if r["status"] == "rejected"}
    for name, verdict in verdicts.items():
        assert rejected[name] == verdict


def test_screen_with_no_usable_candidate_fails_with_causes_grouped(model, bad_cells, tmp_path,
                                                                   capsys):
    """Every candidate is invalid: the command fails and says why, grouped by cause."""
    folder, verdicts = bad_cells
    rc = main(["screen", str(folder), "--model", str(model), "--store", str(tmp_path / "s")])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    lines = captured.err.split("bete: error: ")[1].splitlines()
    assert lines[0] == "none of the 4 candidate(s) can be screened; left out, by cause:"
    by_cause = {line.split()[0]: line.strip() for line in lines[1:]}
    assert set(by_cause) == {"overlapping_atoms", "unsupported_element", "disordered",
                             "magnetic"}
    assert verdicts["oganesson"][1] in by_cause["unsupported_element"]


def test_screening_needs_no_pseudopotential_for_any_element(model, tmp_path, capsys):
    """Debian's LDA family (the default without --pseudos) lacks Cs and Nb: screening runs
    no DFPT, so they are ranked all the same (the verification step alone checks)."""
    from pathlib import Path

    if not (Path("/usr/share/espresso/pseudo") / "Al.pz-vbc.UPF").is_file():
        pytest.skip("Debian's quantum-espresso-data pseudopotentials are not installed")
    folder = tmp_path / "cells"
    folder.mkdir()
    fcc("Cs", 6.0).to(filename=str(folder / "Cs.cif"))
    bcc("Nb", 3.30).to(filename=str(folder / "Nb.cif"))
    rc = main(["screen", str(folder), "--model", str(model), "--store", str(tmp_path / "s"),
               "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert sorted(r["candidate_id"] for r in rows if r["status"] == "ranked") == ["Cs", "Nb"]
