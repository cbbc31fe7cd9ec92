"""A real one-node SLURM (munge + slurmctld + slurmd on localhost) running queue jobs.

Needs Debian's ``slurm-wlm`` and ``munge`` and root (slurmd starts jobs as their user):
``scripts/install-test-deps.sh`` (which ``scripts/test.sh`` runs) installs them as root.
Everything runs from a private configuration in the test's directory on free ports, so a
site SLURM is not touched; the daemons are stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from launchers import fireworks as fw
from tests.launchers.sample_jobs import two_job_flow

pytestmark = pytest.mark.slow

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


@pytest.fixture
def slurm(tmp_path_factory, monkeypatch):
    """Start a private SLURM; yield the environment that talks to it."""
    missing = [d for d in DAEMONS if _which(d) is None]
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} missing): as root, "
                    "apt-get install slurm-wlm munge (scripts/install-test-deps.sh does)")
    if os.geteuid() != 0:
        pytest.skip("the private slurmd must run as root: run the tests as root (CI does)")
    key = Path("/etc/munge/munge.key")
    if not key.is_file():
        pytest.skip("no /etc/munge/munge.key: as root, mungekey --create "
                    "--keyfile=/etc/munge/munge.key (scripts/install-test-deps.sh does)")
    # short path: munge's socket path must stay under the UNIX socket limit
    base = Path(tmp_path_factory.mktemp("slurm"))
    for sub in ("state", "spool", "log", "munge"):
        (base / sub).mkdir()
    (base / "munge").chmod(0o700)
    shutil.copy(key, base / "munge" / "munge.key")
    (base / "munge" / "munge.key").chmod(0o600)
    node = socket.gethostname().split(".")[0]
    conf = base / "slurm.conf"
    conf.write_text(f"""ClusterName=betetest
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={base}/munge/munge.socket.2
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    env = {"SLURM_CONF": str(conf)}
    monkeypatch.setenv("SLURM_CONF", str(conf))
    procs = []
    try:
        procs.append(subprocess.Popen(
            [_which("munged"), "-F", "--force", "-S", f"{base}/munge/munge.socket.2",
             f"--key-file={base}/munge/munge.key", f"--log-file={base}/log/munged.log",
             f"--pid-file={base}/munge/munged.pid", f"--seed-file={base}/munge/seed"]))
        time.sleep(0.5)
        procs.append(subprocess.Popen([_which("slurmctld"), "-D", "-c", "-f", str(conf)]))
        time.sleep(1.0)
        procs.append(subprocess.Popen([_which("slurmd"), "-D", "-f", str(conf)]))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run([_which("sinfo"), "-h", "-o", "%t"], capture_output=True,
                                 text=True, env={**os.environ, **env}).stdout.strip()
            if out == "idle":
                break
            time.sleep(0.5)
        else:
            logs = "".join((base / "log" / f).read_text()[-1500:]
                           for f in ("slurmctld.log", "slurmd.log")
                           if (base / "log" / f).exists())
            pytest.fail(f"private SLURM did not come up (node state {out!r}):\n{logs}")
        yield env
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_for_queue(job_ids: list[str], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = subprocess.run([_which("squeue"), "-h", "-j", ",".join(job_ids)],
                             capture_output=True, text=True).stdout.strip()
        if not out:
            return
        time.sleep(1)
    pytest.fail(f"queue jobs {job_ids} still in the queue after {timeout_s} s")


def _submitted_ids(block_root: Path) -> list[str]:
    """SLURM job ids from the launcher logs (the output files carry them)."""
    return sorted({p.stem.rsplit("-", 1)[-1] for p in block_root.rglob("*.out")})


def _prepare_qadapter(tmp_path: Path, lp_file: Path, worker_env: dict[str, str],
                      gate: Path, singleshot: bool = False, scheduler: str = "slurm") -> Path:
    """``bete config init``'s queue adapter, pointed at the test LaunchPad and store."""
    from launchers.configs import init_configs

    cfg = tmp_path / "cluster"
    init_configs(cfg, scheduler=scheduler)
    qa_file = cfg / "my_qadapter.yaml"
    qadapter = yaml.safe_load(qa_file.read_text())
    # `#!/bin/bash -l` resets PATH from /etc/profile: set up the environment the way a
    # user's pre_rocket does (`source venv/bin/activate`, module load ...)
    exports = "".join(f"export {k}={worker_env[k]}\n" for k in
                      ("PATH", "PYTHONPATH", "BETE_STORE", "MONGOMOCK_SERVERSTORE_FILE"))
    qadapter.update({"slurm": {"ntasks": 1}, "pbs": {"nnodes": 1, "ppnode": 1}}[scheduler])
    qadapter.update(walltime="00:10:00",
                    pre_rocket=f"while [ ! -e {gate} ]; do sleep 0.2; done\n" + exports
                    + qadapter["pre_rocket"])
    if singleshot:  # the commented alternative of the template
        qadapter["rocket_launch"] = (f"bete launch singleshot --launchpad {cfg}/my_launchpad.yaml"
                                     f" --fworker {cfg}/my_fworker.yaml")
    qadapter["rocket_launch"] = qadapter["rocket_launch"].replace(
        f"{cfg}/my_launchpad.yaml", str(lp_file))
    qa_file.write_text(yaml.safe_dump(qadapter))
    return qa_file


def _run_queue_job(launchpad, qa_file: Path, blocks: Path, gate: Path, **kwargs) -> list[str]:
    """One queue launch; wait until SLURM has run it; return its job ids."""
    before = set(_submitted_ids(blocks)) if blocks.exists() else set()
    if gate.exists():
        gate.unlink()
    fw.launch_queue(launchpad, fw.load_qadapter(qa_file), nlaunches=1, launch_dir=blocks,
                    sleep_time_s=0, **kwargs)
    fw.close_launchpad(launchpad)  # mongomock: the queue job must see what we wrote
    gate.write_text("")
    deadline = time.monotonic() + 60
    while not set(_submitted_ids(blocks)) - before and time.monotonic() < deadline:
        time.sleep(0.5)
    new = sorted(set(_submitted_ids(blocks)) - before)
    _wait_for_queue(new)
    return new


def test_generated_slurm_script_runs_the_flow(slurm, launchpad, mongomock_lp_file, tmp_path,
                                              worker_env):
    gate = tmp_path / "launchpad-flushed"
    qa_file = _prepare_qadapter(tmp_path, mongomock_lp_file, worker_env, gate)
    fw.submit_flows(two_job_flow(5.0), launchpad)
    blocks = tmp_path / "blocks"
    _run_queue_job(launchpad, qa_file, blocks, gate)
    [script] = list(blocks.rglob("FW_submit.script"))
    text = script.read_text()
    assert "#SBATCH --ntasks=1" in text and "bete launch rapidfire" in text

    lp = fw.load_launchpad(mongomock_lp_file)
    status = fw.workflow_status(lp)
    fw.close_launchpad(lp)
    logs = "".join(p.read_text()[-1500:] for p in blocks.rglob("*.error"))
    assert [s["state"] for s in status] == ["COMPLETED"], logs
    from stores.check import check_store

    report = check_store(worker_env["BETE_STORE"])
    assert report.counts == {"elph_task": 1, "summary": 1}


def test_reservation_mode_uses_each_jobs_resources(slurm, launchpad, mongomock_lp_file,
                                                   tmp_path, worker_env):
    gate = tmp_path / "launchpad-flushed"
    qa_file = _prepare_qadapter(tmp_path, mongomock_lp_file, worker_env, gate, singleshot=True)
    fw.submit_flows(two_job_flow(5.0), launchpad,
                    resources={"make_*": {"walltime": "00:07:00", "cores": 1},
                               "*": {"walltime": "00:03:00", "cores": 1}})
    fw.close_launchpad(launchpad)
    blocks = tmp_path / "blocks"
    limits = []
    for _ in range(2):  # integrate becomes READY only when make_spectrum is done
        lp = fw.load_launchpad(mongomock_lp_file)
        [job_id] = _run_queue_job(lp, qa_file, blocks, gate, reserve=True)
        info = subprocess.run([_which("scontrol"), "show", "job", job_id], capture_output=True,
                              text=True).stdout
        limits.append(info.split("TimeLimit=")[1].split()[0])
    assert limits == ["00:07:00", "00:03:00"]
    lp = fw.load_launchpad(mongomock_lp_file)
    assert [s["state"] for s in fw.workflow_status(lp)] == ["COMPLETED"]
    fw.close_launchpad(lp)


def test_generated_pbs_script_runs_through_slurms_torque_wrappers(slurm, launchpad,
                                                                  mongomock_lp_file, tmp_path,
                                                                  worker_env):
    """The PBS variant through the ``qsub`` of Debian's ``slurm-wlm-torque``.

    Debian has no PBS or Torque server; these wrappers take PBS's qsub command line, and
    ``sbatch`` reads the script's ``#PBS`` directives.  So this checks the generated PBS script
    (its directives and shell), FireWorks' PBS submission and job-id parsing, and the run to
    COMPLETED; it is not a test against a PBS server.
    """
    if _which("qsub") is None:
        pytest.skip("qsub missing: as root, apt-get install slurm-wlm-torque "
                    "(scripts/install-test-deps.sh does)")
    gate = tmp_path / "launchpad-flushed"
    qa_file = _prepare_qadapter(tmp_path, mongomock_lp_file, worker_env, gate, scheduler="pbs")
    fw.submit_flows(two_job_flow(5.0), launchpad)
    blocks = tmp_path / "blocks"
    fw.launch_queue(launchpad, fw.load_qadapter(qa_file), nlaunches=1, launch_dir=blocks,
                    sleep_time_s=0)
    fw.close_launchpad(launchpad)  # mongomock: the queue job must see what we wrote
    [script] = list(blocks.rglob("FW_submit.script"))
    text = script.read_text()
    assert "#PBS -l nodes=1:ppn=1" in text and "#PBS -l walltime=00:10:00" in text
    # the job waits at the gate: SLURM took the name and time limit from the #PBS lines
    queued = subprocess.run([_which("squeue"), "-h", "-o", "%i %j %l"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert queued[1:] == ["bete", "10:00"], queued
    gate.write_text("")
    _wait_for_queue([queued[0]])

    lp = fw.load_launchpad(mongomock_lp_file)
    status = fw.workflow_status(lp)
    fw.close_launchpad(lp)
    logs = "".join(p.read_text()[-1500:] for p in blocks.rglob("FW_job.error"))
    assert [s["state"] for s in status] == ["COMPLETED"], logs
    from stores.check import check_store

    report = check_store(worker_env["BETE_STORE"])
    assert report.counts == {"elph_task": 1, "summary": 1}
