"""Which irreducible q points of a ph.x run are on disk, each file written to its last line.

ph.x writes a q point's dynamical matrix ``<fildyn><iq>`` and, with ``electron_phonon``,
``elph_dir/elph.inp_lambda.<iq>`` and ``elph_dir/a2Fq2r.<50+k>.<iq>`` (k = 1..nsigma) when it
finishes the q point, and the q list ``<fildyn>0`` at its start.  A ph.x started again
rewrites the files of the q points it computes from their first line (gfortran cuts the file
at its first write), and a kill can stop it in the middle of one: so each file is read to its
last line, whose form is known, not only checked for being there.  A q point whose files are
all whole is final, whichever run wrote them (same inputs, same directory).
"""

from __future__ import annotations

import re
from pathlib import Path

_DIAGONALIZING = "Diagonalizing the dynamical matrix"
_LAMBDA_LINE = re.compile(r"^\s*lambda\(\s*\d+\)=.*\sGHz\s*$")


def _whole_text(path: Path) -> str | None:
    """The file's text when it ends with a line break (a cut file mostly does not); else None."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return text if text.endswith("\n") else None


def q_list_count(dyn0: Path) -> int | None:
    """Irreducible q points listed in ``<fildyn>0``; None when it is missing or cut."""
    text = _whole_text(dyn0)
    if text is None:
        return None
    lines = text.splitlines()
    try:
        nq = int(lines[1].split()[0])
    except (IndexError, ValueError):
        return None
    rows = lines[2:]
    return nq if len(rows) == nq and all(len(r.split()) == 3 for r in rows) else None


def dyn_atoms(path: Path) -> int | None:
    """Atoms of a whole dynamical-matrix file ``<fildyn><iq>``; None when it is missing or cut.

    The file ends with the diagonalisation: 3·nat frequencies between two lines of asterisks.
    """
    text = _whole_text(path)
    if text is None:
        return None
    lines = text.splitlines()
    try:
        nat = int(lines[2].split()[1])  # header: ntyp, nat, ibrav, celldm
    except (IndexError, ValueError):
        return None
    _, found, tail = text.rpartition(_DIAGONALIZING)
    tail_lines = tail.splitlines()
    stars = [s for s in tail_lines if s.strip() and not s.strip().strip("*")]
    freqs = [s for s in tail_lines if s.lstrip().startswith("freq (")]
    whole = len(stars) == 2 and len(freqs) == 3 * nat and tail_lines[-1] == stars[-1]
    return nat if found and whole else None


def _lambda_file_whole(path: Path) -> bool:
    """``elph.inp_lambda.<iq>``: its header's nsigma × modes λ lines, the last one whole."""
    text = _whole_text(path)
    if text is None:
        return False
    lines = text.splitlines()
    try:
        nsigma, modes = (int(x) for x in lines[0].split()[3:5])
    except (IndexError, ValueError):
        return False
    return sum(1 for line in lines if _LAMBDA_LINE.match(line)) == nsigma * modes


def _a2f_file_whole(path: Path, nat: int) -> bool:
    """``a2Fq2r.<50+k>.<iq>``: 2 header lines, then per q of the star 5 + 4·nat² lines.

    Each atom pair is a line of two indices and 3 rows of 6 numbers.
    """
    text = _whole_text(path)
    if text is None:
        return False
    lines = text.splitlines()
    try:
        star = int(lines[1].split()[0])
    except (IndexError, ValueError):
        return False
    return len(lines) == 2 + star * (5 + 4 * nat * nat) and len(lines[-1].split()) == 6


def q_point_on_disk(workdir: Path, fildyn: str, iq: int, nsigma: int | None) -> bool:
    """Whether q point ``iq``'s dynamical matrix (and, ``nsigma`` given, el-ph files) are whole."""
    nat = dyn_atoms(workdir / f"{fildyn}{iq}")
    if nat is None:
        return False
    if nsigma is None:
        return True
    elph = workdir / "elph_dir"
    return _lambda_file_whole(elph / f"elph.inp_lambda.{iq}") and all(
        _a2f_file_whole(elph / f"a2Fq2r.{50 + k}.{iq}", nat) for k in range(1, nsigma + 1))


def first_q_not_on_disk(workdir: Path, fildyn: str, nsigma: int | None) -> tuple[int, int | None]:
    """The first irreducible q point whose files are not all whole, and the q count.

    The count comes from ``<fildyn>0`` (None when it is missing or cut); the first q point is
    count + 1 when every one is on disk.
    """
    nq = q_list_count(workdir / f"{fildyn}0")
    iq = 1
    while (nq is None or iq <= nq) and q_point_on_disk(workdir, fildyn, iq, nsigma):
        iq += 1
    return iq, nq
