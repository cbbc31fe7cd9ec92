"""The skip summary of tests/conftest.py: one line naming every skip; in CI, only GPU/MongoDB
tests may skip (run on a small suite with a copy of the real conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = '''
import pytest

def test_runs():
    pass

@pytest.mark.mongo
def test_needs_mongo():
    pytest.skip("set BETE_TEST_MONGODB_URI")

@pytest.mark.skipif(True, reason="needs a CUDA device")
@pytest.mark.gpu
def test_needs_gpu():
    pass
'''
UNMARKED = '''
import pytest

def test_needs_a_package():
    pytest.skip("apt-get install something")
'''


def _run(tmp_path: Path, ci: str | None, unmarked: bool) -> tuple[int, str]:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: x\n    mongo: x\n")
    (tmp_path / "test_suite.py").write_text(SUITE)
    if unmarked:
        (tmp_path / "test_unmarked.py").write_text(UNMARKED)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout


def _summary(out: str) -> str:
    lines = [x for x in out.splitlines() if x.strip()]
    [line] = [x for x in lines if x.startswith("skipped (")]
    # the last lines of the run: the skip line (and the CI verdict), then pytest's counts
    assert lines.index(line) >= len(lines) - 3 and " in " in lines[-1], out
    return line


def test_one_line_lists_every_skip_with_its_reason(tmp_path):
    code, out = _run(tmp_path, ci=None, unmarked=True)
    assert code == 0, out
    assert _summary(out) == (
        "skipped (3): test_suite.py::test_needs_mongo (set BETE_TEST_MONGODB_URI); "
        "test_suite.py::test_needs_gpu (needs a CUDA device); "
        "test_unmarked.py::test_needs_a_package (apt-get install something)")


def test_ci_fails_on_a_skip_that_is_not_gpu_or_mongodb(tmp_path):
    code, out = _run(tmp_path, ci="true", unmarked=True)
    assert code == 1, out
    assert _summary(out).startswith("skipped (3): ")
    assert "CI=true: 1 skip(s) not for a GPU or MongoDB (test_unmarked.py::test_needs_a_package)" \
        in out


def test_ci_accepts_gpu_and_mongodb_skips(tmp_path):
    code, out = _run(tmp_path, ci="true", unmarked=False)
    assert code == 0, out
    assert _summary(out).startswith("skipped (2): ")


def test_no_skips_says_none(tmp_path):
    (tmp_path / "test_suite.py").write_text("def test_runs():\n    pass\n")
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and _summary(proc.stdout) == "skipped (0): none"
