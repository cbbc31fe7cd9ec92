"""DFPT-running commands say which preset they use, what it is, and why."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from launchers.cli import main
from workflows.qe.preset_rules import describe_preset, load_preset


def _al_cif(folder):
    cell = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                     [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    cell.to(filename=str(folder / "Al.cif"))


def test_campaign_names_the_default_preset_and_why(tmp_path, capsys, monkeypatch):
    _al_cif(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["campaign", "Al.cif", "--pseudos", "debian", "--plan", "--store",
                 str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "DFPT preset" in x)
    assert line.startswith("campaign: DFPT preset fast (the fast-v1 protocol")
    assert "overestimates lambda of strong couplers" in line
    assert "the default: the protocol of the shipped fast-v1 training data" in line
    assert main(["campaign", "Al.cif", "--pseudos", "debian", "--plan", "--preset", "standard",
                 "--store", str(tmp_path / "s")]) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if "DFPT preset" in x)
    assert line.startswith("campaign: DFPT preset standard (") and "chosen with --preset" in line


def test_a_preset_file_based_on_a_shipped_one_is_described_by_its_own_words(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: standard\nname: mine\ndescription: q 8x8x8 for bcc Nb\n"
                    "q_grid: [8, 8, 8]\n")
    assert describe_preset(path) == "mine (q 8x8x8 for bcc Nb)"
    data = load_preset(path)
    assert data["q_grid"] == [8, 8, 8] and data["k_spacing"] == load_preset("standard")[
        "k_spacing"]
