"""Error detection and retry fixes on real failing QE 6.7 outputs (tests/data/qe/failures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.qe.handlers import Change, Fix, check_output, diagnose

DATA = Path(__file__).resolve().parents[2] / "data" / "qe"
FAIL = DATA / "failures"


def _text(name: str) -> str:
    return (FAIL / name).read_text()


@pytest.mark.parametrize("code, path", [
    ("pw", DATA / "al" / "scf.out"), ("pw", DATA / "al" / "scf_dense.out"),
    ("ph", DATA / "al" / "ph.out"), ("q2r", DATA / "al" / "q2r.out"),
    ("matdyn", DATA / "al" / "matdyn.out"), ("pw", DATA / "si" / "scf.out"),
])
def test_clean_outputs_pass(code, path):
    assert check_output(code, path.read_text(), returncode=0) is None
    assert diagnose(code, path.read_text()) is None


def test_scf_not_converged_even_with_job_done():
    text = _text("al_scf_maxstep.out")
    assert "JOB DONE" in text  # QE says JOB DONE after giving up
    failure = check_output("pw", text)
    assert failure.kind == "scf_not_converged"
    assert "convergence NOT achieved after" in failure.error_line
    fix = diagnose("pw", text)
    new = fix.apply({"electrons": {"conv_thr": 1e-14, "electron_maxstep": 3,
                                   "mixing_beta": 0.4}})
    assert new["electrons"]["mixing_beta"] == pytest.approx(0.2)
    assert new["electrons"]["electron_maxstep"] == 200
    assert new["electrons"]["conv_thr"] == 1e-14
    assert fix.max_retries >= 1


def test_scf_fix_floor_and_defaults():
    fix = diagnose("pw", _text("al_scf_maxstep.out"))
    params = {"electrons": {}}
    for _ in range(10):
        params = fix.apply(params)
    assert params["electrons"]["mixing_beta"] == pytest.approx(0.05)  # floor
    first = fix.apply({"ELECTRONS": {}})  # namelist case kept
    assert first["ELECTRONS"]["mixing_beta"] == pytest.approx(0.35)  # QE default 0.7 halved


def test_cannot_bracket_ef():
    text = _text("al_scf_bracket.out")
    failure = check_output("pw", text)
    assert failure.kind == "cannot_bracket_ef"
    assert failure.error_line == "Error in routine efermig (1): internal error, cannot bracket Ef"
    fix = diagnose("pw", text)
    assert fix.apply({"system": {"nbnd": 2}})["system"]["nbnd"] == 6  # +4 beats x1.5
    assert fix.apply({"system": {"nbnd": 20}})["system"]["nbnd"] == 30
    # nbnd not in the input: the output's "number of Kohn-Sham states" is the base
    assert fix.apply({"system": {}})["system"]["nbnd"] == 6


def test_ph_not_converged():
    text = _text("al_ph_niter.out")
    assert check_output("ph", text).kind == "ph_not_converged"
    fix = diagnose("ph", text)
    new = fix.apply({"inputph": {"niter_ph": 1, "tr2_ph": 1e-14}})
    assert new["inputph"]["alpha_mix(1)"] == pytest.approx(0.35)
    assert new["inputph"]["niter_ph"] == 150


def test_stopped_ph_has_no_in_job_fix():
    """A killed or timed-out ph.x ends the job (steps.STOPPED_KINDS); a rerun resumes at start_q."""
    from workflows.qe.steps import STOPPED_KINDS

    text = _text("al_ph_sigterm.out")
    assert "JOB DONE" not in text
    assert check_output("ph", text).kind == "incomplete"
    assert check_output("ph", text, returncode=-15).kind == "killed"
    for rc in (None, -15, 143):
        assert check_output("ph", text, returncode=rc).kind in STOPPED_KINDS
        assert diagnose("ph", text, returncode=rc) is None
    limited = _text("al_ph_max_seconds.out")
    assert check_output("ph", limited, returncode=1).kind == "time_limit" in STOPPED_KINDS
    assert diagnose("ph", limited) is None
    assert check_output("ph", _text("al_ph_recover.out"), returncode=0) is None


@pytest.mark.parametrize("name, kind, line", [
    ("al_ph_missing_fildvscf.out", "qe_error",
     "Error in routine phq_readin (1): El-ph needs a DeltaVscf file"),
    ("al_ph_missing_a2Fsave.out", "crash", "Fortran runtime error: End of file"),
])
def test_unrecoverable_errors_report_qe_line(name, kind, line):
    failure = check_output("ph", _text(name), returncode=1)
    assert failure.kind == kind and failure.error_line.startswith(line)
    assert diagnose("ph", _text(name)) is None


def test_crash_file_style_block():
    text = (" %%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%\n     task #         1\n"
            "     from davcio : error #        20\n     error reading file \"./tmp/al.wfc2\"\n"
            " %%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%\n")
    failure = check_output("ph", text)
    assert failure.error_line == 'Error in routine davcio (20): error reading file "./tmp/al.wfc2"'


def test_nonzero_exit_with_complete_output_is_other():
    text = (DATA / "al" / "scf.out").read_text()
    assert check_output("pw", text, returncode=3).kind == "other"


def test_change_without_default_raises():
    fix = Fix("x", "test", (Change("system", "nbnd", factor=2.0),))
    with pytest.raises(ValueError, match="nbnd"):
        fix.apply({"system": {}})


def test_apply_does_not_mutate_input():
    params = {"electrons": {"mixing_beta": 0.4}}
    diagnose("pw", _text("al_scf_maxstep.out")).apply(params)
    assert params == {"electrons": {"mixing_beta": 0.4}}


def test_broken_el_ph_restart_starts_from_scratch():
    """QE 6.7 cannot recover an el-ph ph.x killed by SIGTERM: fall back to a fresh run."""
    text = _text("al_ph_recover_elph_eof.out")
    failure = check_output("ph", text, returncode=2)
    assert failure.kind == "crash"
    assert failure.error_line.startswith("Fortran runtime error: Sequential READ")
    fix = diagnose("ph", text)
    assert fix.kind == "broken_restart" and fix.max_retries == 1
    assert fix.apply({"inputph": {"recover": True}})["inputph"]["recover"] is False
