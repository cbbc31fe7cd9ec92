"""bete demo with a tiny ensemble and the fake DFPT seam (the real run is the README's)."""

import pytest

from launchers.cli import main
from launchers.demo_data import candidates_dir
from tests.workflows.screening.conftest import FakeDFPT


def test_demo_candidates_are_small_and_covered_by_debian():
    from workflows.qe.pseudos import PseudoFamily
    from workflows.screening.candidates import read_candidates, screen_candidates

    found = read_candidates(candidates_dir())
    assert sorted(c.formula for c in found.accepted) == ["Al", "Cu", "Mg", "Pb", "Si"]
    assert all(len(c.structure) <= 2 for c in found.accepted)
    checked = screen_candidates(found, family=PseudoFamily.debian())
    assert len(checked.accepted) == 5 and not checked.rejected


def test_demo_runs_one_round(model, tmp_path, capsys, monkeypatch):
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


def test_demo_figure_goes_to_the_store_folder_and_is_named(model, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.setattr("workflows.qe.local.run_flow_locally", FakeDFPT())
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    assert main(["demo", "--store", str(store), "--model", str(model)]) == 0
    err = capsys.readouterr().err
    assert (store / "bete-demo.png").is_file() and not (tmp_path / "bete-demo.png").exists()
    assert f"report figure: {store / 'bete-demo.png'}" in err
    assert f"figure {store / 'bete-demo.png'}" in err


@pytest.mark.parametrize("bad", [["--top-k", "0"]])
def test_demo_bad_options(bad, tmp_path, capsys):
    assert main(["demo", "--store", str(tmp_path / "s"), *bad]) == 2
