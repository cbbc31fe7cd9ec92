"""``bete`` prints each log line once, on stderr; stdout holds only results (real processes)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import Counter

from launchers import fireworks as fw
from launchers.cli import OWN_CONSOLE_LOGGERS, console_logging
from tests.launchers.sample_jobs import two_job_flow


def _bete(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    code = "import sys; from launchers.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _messages(stream: str) -> list[str]:
    """Log lines without their time stamp and logger name."""
    return [line.split(": ", 1)[-1] if " INFO " in line else line
            for line in stream.splitlines() if " INFO " in line]


def test_fireworks_and_jobflow_lines_once_on_stderr(launchpad, mongomock_lp_file, tmp_path,
                                                     worker_env):
    fw.submit_flows(two_job_flow(1.0), launchpad)
    fw.close_launchpad(launchpad)
    # FireWorks' default stream level (INFO), as a user's my_launchpad.yaml has it
    mongomock_lp_file.write_text("host: localhost\nport: 27017\nname: bete_test\n")
    run = _bete(["launch", "rapidfire", "--sleep", "0", "--store", str(tmp_path / "store")],
                worker_env, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout == ""  # FireWorks' and jobflow's own stdout handlers did not print
    lines = _messages(run.stderr)
    assert any("Launching Rocket" in line for line in lines)  # rocket.launcher
    assert any("Starting job - integrate" in line for line in lines)  # jobflow, 2nd task
    assert [m for m, n in Counter(run.stderr.splitlines()).items() if n > 1] == []
    assert sum("Rocket finished" in line for line in lines) == 2  # one per Firework
    assert "DEBUG" not in run.stderr  # FireWorks' loggers are DEBUG; bete's level applies
    verbose = _bete(["-v", "status"], worker_env, tmp_path)
    assert verbose.returncode == 0 and "COMPLETED" in verbose.stdout


def test_json_stdout_stays_parseable_when_fireworks_logs(launchpad, mongomock_lp_file,
                                                        tmp_path, worker_env):
    from pymatgen.core import Lattice, Structure

    fw.close_launchpad(launchpad)
    mongomock_lp_file.write_text("host: localhost\nport: 27017\nname: bete_fresh\n")
    Structure(Lattice.cubic(4.05), ["Al"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
              ).to(filename=str(tmp_path / "Al.cif"))
    run = _bete(["dfpt", "submit", "Al.cif", "--format", "json"], worker_env, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    [sub] = json.loads(run.stdout)  # FireWorks' "Added a workflow" went to stderr, once
    assert sub["added"]
    assert sum("Added a workflow" in line for line in run.stderr.splitlines()) == 1


def test_console_logging_is_undone_on_exit():
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    with console_logging(verbose=True) as handler:
        assert handler in root.handlers and handler.level == logging.DEBUG
        assert all(logging.getLogger(n).filters for n in OWN_CONSOLE_LOGGERS)
    assert (list(root.handlers), root.level) == before
    assert not any(logging.getLogger(n).filters for n in OWN_CONSOLE_LOGGERS)
