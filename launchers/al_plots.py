"""Figures and text of an active-learning campaign (``bete al report``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from launchers.plots import save_figure


def _verified_rows(rounds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in rounds:
        for v in d.get("verification") or []:
            if v.get("tc_K_computed") is not None and v.get("tc_K_predicted") is not None:
                out.append({**v, "round": d["round"]})
    return out


def plot_campaign(rounds: Sequence[dict[str, Any]], out: str | Path) -> Path:
    """Best verified Tc and hit rate per round; predicted (± σ) against verified Tc.

    Parameters
    ----------
    rounds : sequence of dict
        Round documents (:class:`stores.schemas.ActiveLearningRound` as dictionaries).
    out : path
        PNG file to write.
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    numbers = [int(d["round"]) for d in rounds]
    best = [(d.get("metrics") or {}).get("best_tc_K") for d in rounds]
    rate = [(d.get("metrics") or {}).get("hit_rate") for d in rounds]
    ax.bar(numbers, [r if r is not None else 0.0 for r in rate], width=0.4, alpha=0.35,
           color="C1")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("hit rate among verified (Tc > 5 K)", color="C1")
    ax.set_xlabel("round")
    ax.set_xticks(numbers)
    ax.set_xlim(min(numbers, default=1) - 0.6, max(numbers, default=1) + 0.6)
    axr = ax.twinx()        # drawn on top of the bars
    values = [b if b is not None else float("nan") for b in best]
    axr.plot(numbers, values, "o-", color="C0", lw=2)
    axr.set_ylim(0, max([v for v in values if v == v] + [5.0]) * 1.15)
    axr.set_ylabel("best verified Tc (K)", color="C0")
    ax.set_title("active learning: progress per round")
    rows = _verified_rows(rounds)
    if rows:
        t = [r["tc_K_computed"] for r in rows]
        p = [r["tc_K_predicted"] for r in rows]
        s = [r.get("tc_K_std") or 0.0 for r in rows]
        for n in sorted({r["round"] for r in rows}):
            idx = [i for i, r in enumerate(rows) if r["round"] == n]
            ax2.errorbar([t[i] for i in idx], [p[i] for i in idx], yerr=[s[i] for i in idx],
                         fmt="o", capsize=3, label=f"round {n}")
        for r, x, y in zip(rows, t, p, strict=True):
            ax2.annotate(r["formula"], (x, y), fontsize=7, xytext=(3, 3),
                         textcoords="offset points")
        hi = max(max(t), max(pi + si for pi, si in zip(p, s, strict=True)), 1.0) * 1.1
        ax2.plot([0, hi], [0, hi], "k--", lw=0.8)
        ax2.axvline(5.0, color="grey", ls=":", lw=0.8)
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "no verified structure yet", ha="center", va="center",
                 transform=ax2.transAxes)
    ax2.set_xlabel("verified Tc, DFPT (K)")
    ax2.set_ylabel("predicted Tc, ensemble mean ± σ (K)")
    ax2.set_title("predicted vs verified Tc")
    return save_figure(fig, out)


def summary_text(rounds: Sequence[dict[str, Any]]) -> str:
    """A few lines: per round the model, acquisitions, verified results and metrics."""
    lines = []
    for d in rounds:
        m = d.get("metrics") or {}

        def f(x: Any) -> str:
            return "-" if x is None else f"{x:.2f}"

        lines.append(f"round {d['round']} ({d.get('status')}): model {d.get('model_id')} "
                     f"({d.get('n_training')} training rows), {d.get('n_screened')} screened "
                     f"by {d.get('acquisition')}, {len(d.get('submitted') or [])} acquired, "
                     f"{len(d.get('verified') or [])} verified, {m.get('hits_tc5', 0)} with "
                     f"Tc > 5 K, MAE(Tc) on new {f(m.get('mae_tc_K_new'))} K, best Tc so far "
                     f"{f(m.get('best_tc_K'))} K")
        for v in d.get("verification") or []:
            lines.append(f"  {v['formula']:<10} {v['candidate_id']:<20} {v['status']:<10} "
                         f"Tc predicted {f(v.get('tc_K_predicted'))} ± {f(v.get('tc_K_std'))}"
                         f" K, computed {f(v.get('tc_K_computed'))} K; λ "
                         f"{f(v.get('lambda_predicted'))} vs {f(v.get('lambda_computed'))}")
    return "\n".join(lines)
