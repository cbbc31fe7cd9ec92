"""`bete dfpt run` refuses bad input before any QE run, with one clear line (exit status 2)."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from launchers.cli import main
from stores.config import load_job_store


def _run(capsys, *argv):
    code = main(["dfpt", "run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _fcc(element="Al", a=4.04):
    return Structure(Lattice.cubic(a), [element] * 4,
                     [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


def test_unreadable_structure_file(tmp_path, capsys):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3.0\nthis is not a cif\n")
    code, out, err = _run(capsys, str(bad), "--store", str(tmp_path / "s"))
    assert code == 2 and out == ""
    assert "broken.cif" in err and err.count("\n") == 1


def test_missing_file(tmp_path, capsys):
    code, _, err = _run(capsys, str(tmp_path / "nope.cif"), "--store", str(tmp_path / "s"))
    assert code == 2 and "nope.cif" in err


def test_disordered_structure(tmp_path, capsys):
    s = Structure(Lattice.cubic(4.0), [{"Al": 0.5, "Mg": 0.5}], [[0, 0, 0]])
    path = tmp_path / "alloy.json"
    path.write_text(s.to_json())
    code, _, err = _run(capsys, str(path), "--store", str(tmp_path / "s"))
    assert code == 2 and "disordered" in err and "partial occupancy" in err


def test_element_missing_from_the_family_named_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BETE_PW_CMD", str(tmp_path / "pw-must-not-run"))
    good, bad = tmp_path / "Al.json", tmp_path / "Nb.json"
    good.write_text(_fcc().to_json())
    bad.write_text(Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [.5, .5, .5]]).to_json())
    code, _, err = _run(capsys, str(good), str(bad), "--store", str(tmp_path / "s"),
                        "--pseudos", "/usr/share/espresso/pseudo")
    assert code == 2
    assert "Nb" in err and "pseudo" in err
    assert not (tmp_path / "pw-must-not-run").exists()
    store = load_job_store(tmp_path / "s")
    store.connect()
    assert store.count() == 0


def test_too_many_atoms(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BETE_MAX_ATOMS", "2")
    s = Structure(Lattice.cubic(6.0), ["Al", "Mg", "Al"], [[0, 0, 0], [.5, .5, .5], [0, .5, 0]])
    path = tmp_path / "big.json"
    path.write_text(s.to_json())
    code, _, err = _run(capsys, str(path), "--store", str(tmp_path / "s"))
    assert code == 2 and "atoms" in err and "2" in err


def test_qe_not_installed_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BETE_PW_CMD", "/nonexistent/pw.x")
    path = tmp_path / "Al.json"
    path.write_text(_fcc().to_json())
    code, out, err = _run(capsys, str(path), "--store", str(tmp_path / "s"),
                          "--pseudos", "/usr/share/espresso/pseudo")
    assert code == 2 and out == ""
    assert "apt-get install -y quantum-espresso" in err


@pytest.mark.qe
def test_failed_qe_run_reports_qe_error_line_and_stores_nothing(tmp_path, capsys,
                                                                  pslibrary_dir, require_qe):
    """A corrupted pseudopotential makes pw.x stop with its own error message."""
    family = tmp_path / "family"
    family.mkdir()
    good = pslibrary_dir / "Al.pbe-nl-rrkjus_psl.1.0.0.UPF"
    text = good.read_text()
    cut = text.index("<PP_LOCAL")
    (family / good.name).write_text(text[:cut] + "<PP_LOCAL>\n garbage\n")
    path = tmp_path / "Al.json"
    path.write_text(_fcc().to_json())
    code, out, err = _run(capsys, str(path), "--store", str(tmp_path / "s"),
                          "--pseudos", str(family), "--override",
                          '{"k_grid": [2,2,2], "k_grid_dense": [4,4,4], "q_grid": [1,1,1],'
                          ' "ecutwfc": 20, "ecutrho": 160}')
    assert code == 2
    assert "pw.x failed" in err
    store = load_job_store(tmp_path / "s")
    store.connect()
    assert store.count({"output.doc_type": "elph_task"}) == 0
