"""The numbers the user docs quote stay true: ``scripts/check_docs.py`` (issue 26)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "check_docs.py"
CARD = "betenet_model/pretrained/fast-v1-jarvis-l3i5/README.md"
CHEAP = {"demo_pick_readme", "demo_pick_screening"}   # the rest reads files only


def _module():
    spec = importlib.util.spec_from_file_location("check_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_docs"] = module     # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_docs = _module()


def _copy_docs(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "README.md", root / "README.md")
    (root / CARD).parent.mkdir(parents=True)
    shutil.copy(REPO / CARD, root / CARD)
    return root


@pytest.mark.slow
def test_the_docs_agree_with_the_project():
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert run.stdout == "" and " 0 drift(s)" in run.stderr


@pytest.mark.parametrize(("doc", "quoted", "edited", "check"), [
    ("docs/model.md", "fast-v1/` (62 records", "fast-v1/` (61 records", "fast_v1_records"),
    (CARD, "- 10 CSO members", "- 9 CSO members", "card_members"),
    ("README.md", "bash scripts/test.sh -m", "bash scripts/test.sh -q -m", "scripts/test.sh"),
    ("docs/campaign.md", "\n## ", "\nMeasured on 3 Dec 2026 in the fifth session.\n\n## ",
     "a dated or session note"),
])
def test_an_edited_quote_fails_the_check(tmp_path, doc, quoted, edited, check):
    """A copy of the docs with one quoted number (or statement) changed drifts; the
    unedited copy does not."""
    root = _copy_docs(tmp_path)
    assert check_docs.run(root, CHEAP) == []
    text = (root / doc).read_text()
    assert quoted in text, f"{doc} no longer quotes {quoted!r}: update this test"
    (root / doc).write_text(text.replace(quoted, edited, 1))
    drift = check_docs.run(root, CHEAP)
    assert len(drift) == 1 and drift[0].startswith(doc) and check in drift[0], drift


def test_a_quote_that_moved_is_a_failure_too(tmp_path):
    root = _copy_docs(tmp_path)
    text = (root / "docs/model.md").read_text()
    (root / "docs/model.md").write_text(text.replace("the 18 of the original set",
                                                     "the original set", 1))
    (drift,) = check_docs.run(root, CHEAP)
    assert "no text matches" in drift and "fast_v1_original" in drift
