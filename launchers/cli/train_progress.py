"""Progress of ``bete train``: one tqdm bar per ensemble member, with an ETA.

The tempered schedule has no fixed length, so a bar's total is an upper bound: the
epoch cap at first, then, once stage 3 has started, the epoch at which its patience
runs out (the best stage-3 epoch + ``patience_stage3``, capped) — the ETA shrinks
as the schedule's end becomes known.  The callback object is picklable (bars are
created in the process that trains the member), so ``--jobs N`` works.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

#: Seconds between bar redraws when stderr is a terminal / a log file.
REFRESH_TTY_S, REFRESH_LOG_S = 0.5, 30.0


class MemberBars:
    """``callback(member, epoch, train_loss, val_loss, stage)`` drawing one bar per member.

    Parameters
    ----------
    members : int
        Ensemble size (bar labels ``member i/N``).
    max_epochs, patience_stage3 : int
        The schedule's cap and stage-3 patience (for the bar's total).
    parallel : bool
        Members train in parallel processes: each bar keeps its own line.
    """

    def __init__(self, members: int, max_epochs: int, patience_stage3: int,
                 parallel: bool = False) -> None:
        self.members = members
        self.max_epochs = max_epochs
        self.patience_stage3 = patience_stage3
        self.parallel = parallel
        self._bars: dict[int, Any] = {}
        self._best3: dict[int, tuple[float, int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without open bars (a worker process draws its own)."""
        return {**self.__dict__, "_bars": {}, "_best3": {}}

    def _bar(self, member: int, epoch: int) -> Any:
        bar = self._bars.get(member)
        if bar is None:
            if not self.parallel:
                self.close()  # the previous member is done
            interactive = sys.stderr.isatty()
            bar = tqdm(total=self.max_epochs, initial=epoch - 1, unit="epoch",
                       desc=f"member {member + 1}/{self.members}", file=sys.stderr,
                       position=member if self.parallel else None, leave=True,
                       dynamic_ncols=True,
                       mininterval=REFRESH_TTY_S if interactive else REFRESH_LOG_S)
            self._bars[member] = bar
        return bar

    def __call__(self, member: int, epoch: int, train_loss: float, val_loss: float,
                 stage: int) -> None:
        """Advance ``member``'s bar to ``epoch`` and tighten its total in stage 3."""
        bar = self._bar(member, epoch)
        if stage == 3:
            best, at = self._best3.get(member, (float("inf"), epoch))
            if val_loss < best:
                best, at = val_loss, epoch
            self._best3[member] = (best, at)
            bound = min(self.max_epochs, at + self.patience_stage3)
            if bound != bar.total:
                bar.total = bound
        bar.set_postfix(stage=stage, val_mse=f"{val_loss:.3g}", refresh=False)
        bar.update(epoch - bar.n)

    def close(self) -> None:
        """Close every open bar (the last one reaches its final epoch count)."""
        for bar in self._bars.values():
            bar.total = bar.n
            bar.refresh()
            bar.close()
        self._bars.clear()
