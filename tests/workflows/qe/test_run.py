"""run_qe: command from settings at call time, failure from the output, timeouts.

Most tests use a fake executable (a shell script printing a real harvested
output); the ``qe`` tests run the real pw.x/ph.x on fcc Al.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.conftest import AL_PSEUDO
from workflows.qe import run as qe_run
from workflows.qe.errors import QEError, QENotInstalledError
from workflows.qe.parsers import parse_lambda_file, parse_pw_output

DATA = Path(__file__).resolve().parents[2] / "data" / "qe"
AL = DATA / "al"


def _fake_exe(tmp_path: Path, name: str, body: str) -> Path:
    exe = tmp_path / "bin" / name
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


@pytest.fixture
def serial(monkeypatch):
    monkeypatch.setenv("BETE_MPI_CMD", "")


def test_command_from_settings_at_call_time(monkeypatch):
    monkeypatch.setenv("BETE_MPI_CMD", "srun")
    monkeypatch.setenv("BETE_MPI_NP_FLAG", "-n")
    monkeypatch.setenv("BETE_MPI_EXTRA_ARGS", "--cpu-bind=cores")
    monkeypatch.setenv("BETE_NPROCS", "4")
    monkeypatch.setenv("BETE_PW_CMD", "/opt/qe/bin/pw.x")
    cmd = qe_run.build_command("pw", "scf.in", input_text="K_POINTS automatic\n8 8 8 0 0 0\n")
    assert cmd == ["srun", "-n", "4", "--cpu-bind=cores", "/opt/qe/bin/pw.x", "-nk", "4",
                   "-in", "scf.in"]
    monkeypatch.setenv("BETE_NPROCS", "2")  # changed later: seen by the next call
    assert qe_run.build_command("pw", "scf.in")[:3] == ["srun", "-n", "2"]


def test_serial_cases(monkeypatch):
    monkeypatch.setenv("BETE_MPI_CMD", "mpirun")
    assert qe_run.build_command("pw", "a.in", nprocs=1) == ["pw.x", "-in", "a.in"]
    assert qe_run.build_command("q2r", "q2r.in") == ["q2r.x", "-in", "q2r.in"]
    assert qe_run.build_command("matdyn", "m.in") == ["matdyn.x", "-in", "m.in"]
    monkeypatch.setenv("BETE_MPI_CMD", "")
    assert qe_run.build_command("ph", "ph.in", nprocs=8) == ["ph.x", "-in", "ph.in"]


def test_pools_and_extra_args(monkeypatch):
    monkeypatch.setenv("BETE_MPI_CMD", "mpirun")
    gamma = "K_POINTS gamma\n"
    assert "-nk" not in qe_run.build_command("pw", "a.in", nprocs=4, input_text=gamma)
    cmd = qe_run.build_command("ph", "ph.in", nprocs=4, npool=2, extra_args=["-nd", "1"])
    assert cmd == ["mpirun", "-np", "4", "ph.x", "-nk", "2", "-nd", "1", "-in", "ph.in"]
    monkeypatch.setenv("BETE_NPOOL", "1")
    assert "-nk" not in qe_run.build_command("pw", "a.in", nprocs=4)
    assert qe_run.default_npool(6, 4) == 3
    assert qe_run.default_npool(2, None) == 2
    assert qe_run.default_npool(16, 1) == 1


def test_bad_code_and_nprocs():
    with pytest.raises(ValueError, match="unknown QE code"):
        qe_run.build_command("cp", "a.in")
    with pytest.raises(ValueError, match="nprocs"):
        qe_run.build_command("pw", "a.in", nprocs=0)


def test_root_gets_openmpi_variables(monkeypatch):
    monkeypatch.delenv("OMPI_ALLOW_RUN_AS_ROOT", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    env = qe_run._environment(["/usr/bin/mpirun", "-np", "2", "pw.x"])
    assert env["OMPI_ALLOW_RUN_AS_ROOT"] == "1" and env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "OMPI_ALLOW_RUN_AS_ROOT" not in qe_run._environment(["mpirun", "pw.x"])


def test_not_installed(tmp_path, monkeypatch, serial):
    (tmp_path / "scf.in").write_text("x\n")
    monkeypatch.setenv("BETE_PW_CMD", str(tmp_path / "nowhere" / "pw.x"))
    with pytest.raises(QENotInstalledError, match="apt-get install -y quantum-espresso"):
        qe_run.run_qe("pw", "scf.in", tmp_path)


def test_missing_mpi_launcher_is_named_as_such(tmp_path, monkeypatch):
    """srun from a cluster's settings on a workstation: the launcher, not QE, is missing."""
    from workflows.qe.errors import MPILauncherNotFoundError

    (tmp_path / "scf.in").write_text("x\n")
    monkeypatch.setenv("BETE_MPI_CMD", "srun-not-here")
    monkeypatch.setenv("BETE_NPROCS", "2")
    with pytest.raises(MPILauncherNotFoundError) as info:
        qe_run.run_qe("pw", "scf.in", tmp_path)
    message = str(info.value)
    assert message.startswith("MPI launcher 'srun-not-here' (setting mpi_cmd) not found")
    assert "Quantum ESPRESSO" not in message and "BETE_MPI_CMD=mpirun" in message


def test_missing_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="write the input"):
        qe_run.run_qe("pw", "scf.in", tmp_path)


def test_success_streams_output_and_returns_result(tmp_path, monkeypatch, serial):
    exe = _fake_exe(tmp_path, "pw.x", f"cat {AL / 'scf.out'}")
    monkeypatch.setenv("BETE_PW_CMD", str(exe))
    (tmp_path / "scf.in").write_text("&control\n/\n")
    result = qe_run.run_qe("pw", "scf.in", tmp_path)
    assert result.output_file == tmp_path / "scf.out"
    assert result.command == [str(exe), "-in", "scf.in"]
    assert result.wall_time_s >= 0 and result.returncode == 0
    assert parse_pw_output(result.output_file).converged


def test_error_detected_although_exit_zero(tmp_path, monkeypatch, serial):
    exe = _fake_exe(tmp_path, "pw.x", f"cat {DATA / 'failures' / 'al_scf_bracket.out'}; exit 0")
    monkeypatch.setenv("BETE_PW_CMD", str(exe))
    (tmp_path / "a.in").write_text("x\n")
    with pytest.raises(QEError) as err:
        qe_run.run_qe("pw", "a.in", tmp_path, output_file="custom.log")
    assert err.value.kind == "cannot_bracket_ef"
    assert err.value.error_line == "Error in routine efermig (1): internal error, cannot bracket Ef"
    assert err.value.executable == "pw.x"
    assert (tmp_path / "custom.log").stat().st_size > 0


def test_timeout_kills_and_reports(tmp_path, monkeypatch, serial):
    exe = _fake_exe(tmp_path, "ph.x", "echo started; sleep 30")
    monkeypatch.setenv("BETE_PH_CMD", str(exe))
    monkeypatch.setenv("BETE_QE_TIMEOUT_S", "0.5")  # from settings, read at call time
    (tmp_path / "ph.in").write_text("x\n")
    with pytest.raises(QEError) as err:
        qe_run.run_qe("ph", "ph.in", tmp_path)
    assert err.value.kind == "timeout" and "recover" in err.value.error_line
    assert (tmp_path / "ph.out").read_text().startswith("started")


def test_killed_by_signal(tmp_path, monkeypatch, serial):
    exe = _fake_exe(tmp_path, "ph.x", "echo started; kill -9 $$")
    monkeypatch.setenv("BETE_PH_CMD", str(exe))
    (tmp_path / "ph.in").write_text("x\n")
    with pytest.raises(QEError) as err:
        qe_run.run_qe("ph", "ph.in", tmp_path)
    assert err.value.kind == "killed"


def _al_dir(tmp_path: Path, names: list[str]) -> Path:
    (tmp_path / "pseudo").mkdir()
    upf = "Al.pbe-nl-rrkjus_psl.1.0.0.UPF"
    (tmp_path / "pseudo" / upf).symlink_to(AL_PSEUDO / upf)
    for name in names:
        src = AL / name if (AL / name).exists() else DATA / "failures" / name
        shutil.copy(src, tmp_path / name)
    return tmp_path


@pytest.mark.qe
def test_real_pw_scf_and_non_convergence(tmp_path, require_qe):
    d = _al_dir(tmp_path, ["scf.in", "al_scf_maxstep.in"])
    result = qe_run.run_qe("pw", "scf.in", d)
    out = parse_pw_output(result.output_file)
    ref = parse_pw_output(AL / "scf.out")
    assert out.converged and out.total_energy_eV == pytest.approx(ref.total_energy_eV, abs=1e-4)
    with pytest.raises(QEError) as err:
        qe_run.run_qe("pw", "al_scf_maxstep.in", d)
    assert err.value.kind == "scf_not_converged"


@pytest.mark.qe
@pytest.mark.slow
def test_real_al_elph_chain_reproduces_reference(tmp_path, require_qe):
    names = ["scf_dense.in", "scf.in", "ph.in", "q2r.in", "matdyn.in"]
    d = _al_dir(tmp_path, names)
    for code, name in zip(["pw", "pw", "ph", "q2r", "matdyn"], names, strict=True):
        qe_run.run_qe(code, name, d)
    new = parse_lambda_file(d / "lambda").lambdas
    ref = parse_lambda_file(AL / "lambda").lambdas
    # reruns differ by ~0.5 % (random start wavefunctions, iterative solvers)
    assert new == pytest.approx(ref, rel=0.02)


def test_the_settings_command_runs_not_a_same_named_program_on_path(tmp_path, monkeypatch,
                                                                    serial):
    """A ``pw.x`` earlier on PATH (another QE build, a wrapper) does not replace the setting."""
    other = _fake_exe(tmp_path / "other", "pw.x", "echo 'the pw.x on PATH ran'; exit 1")
    chosen = _fake_exe(tmp_path / "chosen", "pw.x", f"cat {AL / 'scf.out'}")
    monkeypatch.setenv("PATH", f"{other.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "scf.in").write_text("&control\n/\n")
    monkeypatch.setenv("BETE_PW_CMD", str(chosen))
    result = qe_run.run_qe("pw", "scf.in", tmp_path)
    assert result.command == [str(chosen), "-in", "scf.in"]
    monkeypatch.setenv("BETE_PW_CMD", "pw.x")  # a bare name: PATH decides, and it fails
    with pytest.raises(QEError):
        qe_run.run_qe("pw", "scf.in", tmp_path)
