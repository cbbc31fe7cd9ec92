"""Re-derive the numbers the user docs quote that a command gives cheaply; fail on drift.

    python scripts/check_docs.py                   # every check; exit 1 listing each drift
    python scripts/check_docs.py --skip demo_pick  # the checks that need no model run
    python scripts/check_docs.py --root DIR        # the docs of another copy of the repo

Each check reads a quoted value from a doc (a pattern with one group) and compares it with
what the project gives now: the packaged fast-v1 record counts, the shipped ensemble's
manifest (members, training rows, epoch cap), the candidate ``bete demo`` picks (the shipped
ensemble's UCB ranking of the five demo cells, a few seconds); that no documented
``scripts/test.sh`` call adds ``-q`` (the script passes it already; twice hides the count
line); and that no user doc carries a date or a "session" note.  A pattern that no longer
matches is a failure too: the text moved, so the check must move with it.  Run by
``tests/test_docs.py`` (slow part of the suite).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CARD = "betenet_model/pretrained/fast-v1-jarvis-l3i5/README.md"


@dataclass(frozen=True)
class Check:
    """A value quoted in ``file`` (``pattern``'s group 1, every match) and where it comes from."""

    name: str
    file: str
    pattern: str
    derive: Callable[[], str]


# --------------------------------------------------------------------------- sources
@cache
def fast_v1() -> dict[str, int]:
    """Record counts of the packaged fast-v1 set."""
    from stores.datasets import load_fast_v1, packaged_fast_v1_dir

    files = sorted(packaged_fast_v1_dir().glob("*.json"))
    campaign = sum(1 for f in files if json.loads(f.read_text()).get("computed_by"))
    return {"records": len(files), "original": len(files) - campaign, "campaign": campaign,
            "stable": len(load_fast_v1(None, report=lambda _m: None))}


@cache
def manifest() -> dict:
    """The shipped ensemble's ``ensemble.json``."""
    from workflows.ml.predict import default_model_dir

    return json.loads((default_model_dir() / "ensemble.json").read_text())


def record_lambda(ident: str) -> str:
    """λ (σ = 0.02 Ry, 3 decimals) of a packaged fast-v1 record."""
    from stores.datasets import load_fast_v1

    row = next(r for r in load_fast_v1(None, report=lambda _m: None) if r.id == ident)
    return f"{row.labels['lambda_']:.3f}"


def members() -> str:
    """Members of the shipped ensemble."""
    return str(manifest()["members"])


def spectrum_rows() -> str:
    """Its training rows with an α²F."""
    return str(manifest()["training_set"]["n_spectrum"])


def tc_only_rows() -> str:
    """Its Tc-only (jarvis-tc) training rows."""
    return str(manifest()["training_set"]["n_tc_only"])


def training_rows() -> str:
    """All its training rows."""
    return str(manifest()["training_set"]["n"])


def epoch_cap() -> str:
    """Its epoch cap per member."""
    return str(manifest()["config"]["training"]["max_epochs"])


@cache
def demo_pick() -> str:
    """Formula of the candidate ``bete demo`` verifies.

    The top of the shipped ensemble's UCB ranking (κ = 1) of the demo cells, as
    ``bete screen`` ranks them.
    """
    import contextlib
    import io

    from launchers.cli import main
    from launchers.demo_data import candidates_dir

    out = io.StringIO()
    with tempfile.TemporaryDirectory() as store, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(io.StringIO()):
        rc = main(["screen", str(candidates_dir()), "--acquisition", "ucb", "--top-k", "1",
                   "--format", "json", "--store", store])
    if rc != 0:
        raise RuntimeError(f"bete screen of the demo cells failed (exit {rc})")
    ranked = [r for r in json.loads(out.getvalue()) if r.get("status") == "ranked"]
    return str(ranked[0]["formula"])


CHECKS = [
    Check("fast_v1_records", "docs/model.md", r"stores/data/fast-v1/` \((\d+) records",
          lambda: str(fast_v1()["records"])),
    Check("fast_v1_original", "docs/model.md", r"the (\d+) of the original set",
          lambda: str(fast_v1()["original"])),
    Check("fast_v1_campaign", "docs/model.md", r"(\d+) from the project's own campaign",
          lambda: str(fast_v1()["campaign"])),
    Check("fast_v1_stable", "docs/model.md", r"campaign; (\d+) dynamically stable\)",
          lambda: str(fast_v1()["stable"])),
    Check("train_timing_records", "docs/model.md", r"5 members on the (\d+) stable fast-v1",
          lambda: str(fast_v1()["stable"])),
    Check("pb_pslibrary_lambda", "docs/pseudopotentials-and-presets.md",
          r"fast-v1/21\.json`\) has (\d\.\d+)", lambda: record_lambda("21")),
    Check("card_members", CARD, r"- (\d+) CSO members", members),
    Check("card_spectrum_rows", CARD, r"The (\d+) dynamically stable fast-v1 records",
          spectrum_rows),
    Check("card_tc_rows", CARD, r"The training side \((\d+) rows\)", tc_only_rows),
    Check("card_epochs", CARD, r"capped at\s+(\d+) epochs per member", epoch_cap),
    Check("model_md_members", "docs/model.md", r"model card: its `README.md`; (\d+) members",
          members),
    Check("model_md_spectrum_rows", "docs/model.md", r"trained on the (\d+)\s+stable fast-v1",
          spectrum_rows),
    Check("model_md_tc_rows", "docs/model.md", r"records and (\d+) jarvis-tc Tc rows",
          tc_only_rows),
    Check("screening_training_rows", "docs/screening.md",
          r"shipped ensemble \((\d+) training rows", training_rows),
    Check("demo_pick_readme", "README.md", r"it picks ([A-Z][a-z]?\w*)", demo_pick),
    Check("demo_pick_screening", "docs/screening.md", r"the shipped ensemble acquires "
          r"([A-Z][a-z]?\w*)", demo_pick),
]


def no_double_q(root: Path) -> list[str]:
    """Documented ``scripts/test.sh`` calls must not pass ``-q``: the script already does."""
    problems = []
    for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"scripts/test\.sh[^`\n#]*\s-q{1,2}\b", line):
                problems.append(f"{path.relative_to(root)}:{n}: scripts/test.sh already passes "
                                "-q; a second one hides pytest's count line")
    return problems


_DATE = re.compile(r"\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* "
                   r"\d{4}\b|\b20\d\d-\d\d-\d\d\b|\bsessions?\b", re.IGNORECASE)


def no_lab_notes(root: Path) -> list[str]:
    """User docs say what is true now: no dates, no "session".

    History goes to ``benchmarks/results/``; example output in code blocks may show time
    stamps.
    """
    problems = []
    for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        fenced = False
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and (found := _DATE.search(line)):
                problems.append(f"{path.relative_to(root)}:{n}: {found.group(0)!r}: a dated or "
                                "session note; move it to benchmarks/results/")
    return problems


LINE_CHECKS = {"no_double_q": no_double_q, "no_lab_notes": no_lab_notes}


def run(root: Path, skip: set[str]) -> list[str]:
    """Every drift found (empty: the docs agree with the project)."""
    problems = [p for name, check in LINE_CHECKS.items() if name not in skip
                for p in check(root)]
    for check in CHECKS:
        if check.name in skip:
            continue
        text = (root / check.file).read_text()
        quoted = re.findall(check.pattern, text)
        if not quoted:
            problems.append(f"{check.file}: no text matches {check.pattern!r} any more "
                            f"(check {check.name}): the quote moved; move the check with it")
            continue
        expected = check.derive()
        for value in quoted:
            if value != expected:
                problems.append(f"{check.file}: quotes {value} where the project gives "
                                f"{expected} now (check {check.name})")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the checks; print each drift on stdout, a count on stderr; exit 1 on drift."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO,
                        help="folder holding README.md, docs/ and the model card (default: "
                        "this repository)")
    parser.add_argument("--skip", nargs="*", default=[], metavar="CHECK",
                        help=f"checks to leave out: {', '.join(c.name for c in CHECKS)}, "
                        f"{', '.join(LINE_CHECKS)}")
    args = parser.parse_args(argv)
    unknown = set(args.skip) - {c.name for c in CHECKS} - set(LINE_CHECKS)
    if unknown:
        parser.error(f"unknown check(s): {', '.join(sorted(unknown))}")
    problems = run(args.root, set(args.skip))
    for line in problems:
        print(line)
    n = len(CHECKS) + len(LINE_CHECKS) - len(args.skip)
    print(f"check_docs: {n} checks, {len(problems)} drift(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
