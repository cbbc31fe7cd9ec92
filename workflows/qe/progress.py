"""Progress of a running ph.x, read from its output as it grows.

ph.x lists the irreducible q points of the grid at its start (``(   3 q-points):``) and
writes "Diagonalizing the dynamical matrix" when one is finished.  A run restarted at a
later q point (``start_q``, see :func:`workflows.qe.jobs.ph_resume_q`) or limited to one
(``last_q``, the per-q fan-out) computes only that range.  :class:`PhProgress` counts the
finished q points and says how long the others will take at the pace so far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GRID = re.compile(r"\(\s*(\d+)\s+q-points\s*\)")
_Q_DONE = "Diagonalizing the dynamical matrix"


def _namelist_int(text: str, key: str) -> int | None:
    found = re.search(rf"(?:^|[\s,]){key}\s*=\s*(\d+)", text, re.IGNORECASE)
    return int(found.group(1)) if found else None


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 04 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@dataclass
class PhProgress:
    """Irreducible q points a ph.x run has finished, from chunks of its output.

    Attributes
    ----------
    first_q, last_q
        ``start_q`` and ``last_q`` of the input (1 and None: the whole grid).
    n_grid
        Irreducible q points of the grid (from the output's header; None until read).
    done
        q points this run has finished.
    """

    first_q: int = 1
    last_q: int | None = None
    n_grid: int | None = None
    done: int = 0
    _tail: str = ""

    @classmethod
    def from_input(cls, input_text: str) -> PhProgress:
        """A counter for the run of this ph.x input (its ``start_q``/``last_q``)."""
        return cls(first_q=_namelist_int(input_text, "start_q") or 1,
                   last_q=_namelist_int(input_text, "last_q"))

    @property
    def last(self) -> int | None:
        """Number of the last q point this run computes (None: not known yet)."""
        return self.last_q or self.n_grid

    @property
    def current(self) -> int:
        """Number (in the grid) of the last finished q point; first_q - 1 before any."""
        return self.first_q - 1 + self.done

    def feed(self, chunk: str) -> bool:
        """Read more output; True when another q point has finished."""
        text = self._tail + chunk
        complete, _, self._tail = text.rpartition("\n")
        if self.n_grid is None and (grid := _GRID.search(complete)):
            self.n_grid = int(grid.group(1))
        finished = complete.count(_Q_DONE)
        self.done += finished
        return finished > 0

    def line(self, elapsed_s: float, done: int | None = None) -> str:
        """``q point 2 of 3 done, 1 min 05 s elapsed, about 40 s left`` (of this run).

        ``done``: say it for the run's ``done``-th finished q point (default: the latest), so
        q points that finished between two reads each get their line.
        """
        done = self.done if done is None else done
        current = self.first_q - 1 + done
        last = self.last
        of = f" of {last}" if last else ""
        said = f"irreducible q point {current}{of} done, {duration(elapsed_s)} elapsed"
        if last is None or done == 0:
            return said
        left = last - current
        if left <= 0:
            return f"{said}, all q points done"
        return f"{said}, about {duration(elapsed_s / done * left)} left"
