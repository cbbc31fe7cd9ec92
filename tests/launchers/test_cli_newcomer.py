"""What a new user trips over first (issue 26): clear errors, quiet output, hints that work."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from launchers.cli import main
from stores import records as rec
from stores.config import embedded_store
from stores.schemas import ActiveLearningRound
from tests.conftest import FCC_SITES, REPO


def _bete(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    code = "import sys; from launchers.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=600, **kwargs)


def _al_cif(folder: Path) -> Path:
    path = folder / "Al.cif"
    Structure(Lattice.cubic(4.04), ["Al"] * 4, FCC_SITES).to(filename=str(path))
    return path


def _snapshot(folder: Path) -> dict[Path, tuple[int, bytes]]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------ --model that is not there
def test_evaluate_says_a_missing_model_folder_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    assert main(["evaluate", "--model", str(missing), "--data", "fast-v1"]) == 2
    err = capsys.readouterr().err
    assert f"--model {missing} does not exist" in err and "ensemble.json" not in err


# ------------------------------------------------------------------ al status of every campaign
def test_al_status_without_campaign_shows_the_campaigns_in_the_store(tmp_path, capsys):
    store = embedded_store(tmp_path / "store")
    store.connect()
    rec.write_round(store, ActiveLearningRound(campaign="demo", round=1, status="completed",
                                               model_id="cso-x"))
    store.close()
    assert main(["al", "status", "--store", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["campaign", "round", "status"]
    assert out[1].split()[:3] == ["demo", "1", "completed"]
    assert main(["al", "report", "--store", str(tmp_path / "store"),
                 "--out", str(tmp_path / "al.png")]) == 0   # the only campaign: no --campaign
    assert (tmp_path / "al.png").is_file()


# ------------------------------------------------------------------ an unknown preset
@pytest.mark.parametrize("command", [
    ["dfpt", "run", "{cif}"], ["campaign", "{cif}"], ["screen", "{dir}", "--verify"],
    ["al", "run", "--candidates", "{dir}"], ["demo"]])
def test_an_unknown_preset_fails_before_the_store_is_touched(tmp_path, capsys, command):
    cif = _al_cif(tmp_path)
    store = embedded_store(tmp_path / "store")
    store.connect()
    store.close()
    before = _snapshot(tmp_path / "store")
    argv = [a.format(cif=cif, dir=tmp_path) for a in command]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--store", str(tmp_path / "store"), "--preset", "fats"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --preset: unknown preset 'fats'" in err and "Traceback" not in err
    assert _snapshot(tmp_path / "store") == before


def test_a_preset_filter_takes_any_name(tmp_path, capsys):
    """``bete query --preset`` filters stored documents: an old preset name is fine."""
    store = embedded_store(tmp_path / "store")
    store.connect()
    store.close()
    assert main(["query", "--store", str(tmp_path / "store"), "--preset", "fast-v0"]) == 0


# ------------------------------------------------------------------ a read-only store
def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs user+mount namespaces (unshare -rm) "
                    "to mount the store read-only")
def test_a_writing_command_on_a_read_only_store_says_so(tmp_path):
    cif = _al_cif(tmp_path)
    folder = tmp_path / "store"
    store = embedded_store(folder)
    store.connect()
    store.close()
    code = "import sys; from launchers.cli import main; sys.exit(main(sys.argv[1:]))"
    script = (f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && '
              f'"{sys.executable}" -c "{code}" dfpt run "{cif}" --store "{folder}"')
    run = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"bete: error: cannot write into the store {folder}")
    assert "needs a writable store" in last and "Errno" not in last


# ------------------------------------------------------------------ the demo's "next:" hint
def test_the_demo_hint_names_a_bete_that_runs_without_the_venv_on_path(tmp_path, monkeypatch):
    from launchers.cli.demo import bete_command

    venv_bin = Path(sys.executable).parent
    if not (venv_bin / "bete").is_file():
        pytest.skip("bete is not installed next to this Python (no console script)")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    hint = bete_command()
    assert hint != "bete" and Path(hint).resolve() == (venv_bin / "bete").resolve()
    run = subprocess.run([hint, "--version"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and run.stdout.startswith("bete ")
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")     # an activated venv
    assert bete_command() == "bete"


# ------------------------------------------------------------------ quiet by default
def test_third_party_warnings_only_with_verbose():
    from launchers.cli import third_party_warnings

    seen: list[str] = []
    third_party = str(Path(pytest.__file__))
    ours = str(REPO / "workflows" / "ml" / "train.py")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *args, **kwargs: seen.append(str(message))
        for verbose in (False, True):
            with third_party_warnings(verbose):
                warnings.warn_explicit("No tensor product accelerator", UserWarning,
                                       third_party, 1)
                warnings.warn_explicit(f"ours {verbose}", UserWarning, ours, 1)
    assert seen == ["ours False", "No tensor product accelerator", "ours True"]


@pytest.mark.slow
def test_sevennet_says_nothing_about_accelerators_unless_verbose(tmp_path):
    cif = _al_cif(tmp_path)
    quiet = _bete(["phonons", str(cif), "--store", str(tmp_path / "a")])
    loud = _bete(["-v", "phonons", str(cif), "--store", str(tmp_path / "b")])
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr[-2000:]
    assert "tensor product accelerator" not in quiet.stderr
    assert "tensor product accelerator" in loud.stderr


def test_numbers_in_messages_are_rounded(tmp_path, capsys):
    rc = main(["train", "--data", "fast-v1", "--members", "1", "--max-epochs", "2",
               "--out", str(tmp_path / "e"), "--quiet", "--network", "mul=4",
               "--network", "embed_dim=8", "--network", "radial_neurons=8"])
    done = capsys.readouterr().err.strip().splitlines()[-1]
    mse = re.search(r"mean out-of-bag MSE (\S+),", done)
    assert rc == 0 and mse, done
    assert re.fullmatch(r"0\.0*\d{1,3}|\d\.\d{1,2}e[-+]\d+", mse[1]), done


# ------------------------------------------------------------------ progress of bete phonons
def test_phonons_says_what_it_computes_before_it_does(tmp_path, capsys):
    """A line with the supercell size (what the wait grows with) before each calculation."""
    from workflows.mlip.flows import MLIPPhononMaker

    al = Structure(Lattice.cubic(4.04), ["Al"] * 4, FCC_SITES).get_primitive_structure()
    al.to(filename=str(tmp_path / "Al.cif"))
    n = round(abs(np.linalg.det(MLIPPhononMaker().supercell_matrix(al))))
    assert main(["phonons", str(tmp_path / "Al.cif"), "--store", str(tmp_path / "s")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[1/1]")]
    assert err[0] == f"[1/1] Al (Al): computing sevennet-0 phonons, supercell of {n} atoms"
    assert err[1].startswith("[1/1] Al (Al): min ")


# ------------------------------------------------------------------ plot --out, query columns
@pytest.fixture
def two_al_results(tmp_path, al_run_dir, al_run_input_set):
    """The real coarse Al run stored twice, as if computed under two input hashes."""
    from monty.json import jsanitize

    from stores.schemas import ScfSummary
    from workflows.qe.documents import elph_document
    from workflows.qe.jobs import ELPH_BLOB_FIELDS

    store = embedded_store(tmp_path / "store")
    store.connect()
    for i, key in enumerate(("a" * 64, "c" * 64)):
        doc = elph_document(al_run_dir, al_run_input_set, "fast", f"al-{i}", key,
                            ScfSummary(pressure_kbar=5.0, is_metal=True), "6.7MaX", "crystal")
        store.update({"uuid": f"u{i}", "index": 1, "completed_at": str(i),
                      "output": jsanitize(doc.model_dump(), strict=True, enum_values=True)},
                     save={"data": list(ELPH_BLOB_FIELDS)})
    store.close()
    return str(tmp_path / "store")


def test_plot_out_is_the_file_for_one_result_and_a_listed_rule_for_several(
        two_al_results, tmp_path, capsys):
    out = tmp_path / "al-a2f.png"
    assert main(["plot", "a2f", "Al", "--store", two_al_results, "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("2 documents match: one figure each, named "
                             "al-a2f-<formula>-<input hash[:8]>.png")
    for key in ("aaaaaaaa", "cccccccc"):
        path = tmp_path / f"al-a2f-Al-{key}.png"
        assert path.is_file()
        assert any(line.startswith(f"wrote {path} (Al, fast + pslibrary-1.0.0-pbe-us-Al, QE "
                                   f"6.7MaX") for line in err)
    assert not out.exists()
    assert main(["plot", "a2f", "cccc", "--store", two_al_results, "--out", str(out)]) == 0
    assert out.is_file() and capsys.readouterr().err.startswith(f"wrote {out} (Al, ")


def test_query_rows_name_preset_and_pseudopotential_family(two_al_results, capsys):
    assert main(["query", "--store", two_al_results]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["formula", "source_id", "preset", "pseudo_family"]
    assert sorted(r.split()[:4] for r in rows) == [
        ["Al", f"al-{i}", "fast", "pslibrary-1.0.0-pbe-us-Al"] for i in (0, 1)]
