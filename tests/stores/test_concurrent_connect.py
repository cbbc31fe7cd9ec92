"""Several processes creating and connecting one new embedded store at once (two campaigns)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

WRITER = """
import sys
from stores.config import load_job_store
store = load_job_store(sys.argv[1], create=True)
store.connect()
store.update({"uuid": sys.argv[2], "index": 1, "output": {}}, key="uuid")
"""


def test_processes_connecting_at_once_all_succeed(tmp_path):
    for attempt in range(3):
        folder = tmp_path / f"store{attempt}"
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), f"w{i}"],
                                  cwd=REPO, stderr=subprocess.PIPE, text=True)
                 for i in range(6)]
        errors = [p.communicate()[1] for p in procs if p.wait() != 0]
        assert not errors, errors[0][-600:]
        from stores.config import load_job_store
        store = load_job_store(folder, create=False, read_only=True)
        store.connect()
        assert store.count({}) == 6
        store.close()
