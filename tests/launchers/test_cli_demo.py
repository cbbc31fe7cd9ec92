"""bete demo with a tiny ensemble and the fake DFPT seam (the real run is the README's)."""

import pytest

from launchers.cli import main
from launchers.demo_data import candidates_dir
from tests.launchers.test_cli_screen import model  # noqa: F401  (module fixture)
from tests.workflows.screening.conftest import FakeDFPT


def test_demo_candidates_are_small_and_covered_by_debian():
    from workflows.qe.pseudos import PseudoFamily
    from workflows.screening.candidates import read_candidates, screen_candidates

    found = read_candidates(candidates_dir())
    assert sorted(c.formula for c in found.accepted) == ["Al", "Cu", "Mg", "Pb", "Si"]
    assert all(len(c.structure) <= 2 for c in found.accepted)
    checked = screen_candidates(found, family=PseudoFamily.debian())
    assert len(checked.accepted) == 5 and not checked.rejected


def test_demo_runs_one_round(model, tmp_path, capsys, monkeypatch):  # noqa: F811
    fake = FakeDFPT()
    monkeypatch.setattr("workflows.qe.local.run_flow_locally", fake)
    png = tmp_path / "demo.png"
    rc = main(["demo", "--store", str(tmp_path / "store"), "--model", str(model),
               "--out", str(png)])
    out = capsys.readouterr().out
    assert rc == 0 and len(fake.calls) == 1
    assert "round 1 (completed)" in out and png.is_file()
    # a second run reuses everything
    assert main(["demo", "--store", str(tmp_path / "store"), "--model", str(model),
                 "--out", str(png)]) == 0
    assert len(fake.calls) == 1


@pytest.mark.parametrize("bad", [["--top-k", "0"]])
def test_demo_bad_options(bad, tmp_path, capsys):
    assert main(["demo", "--store", str(tmp_path / "s"), *bad]) == 2
