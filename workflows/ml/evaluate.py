"""Score an ensemble on labelled records, next to the mean-spectrum baseline.

Truth for every row is computed from the record's own α²F (its native grid)
with :mod:`workflows.common.physics` (Allen–Dynes with f1·f2, μ* = 0.10 by
default); predictions are the ensemble mean of the per-member values.  The
baseline predicts the mean training spectrum (saved with the ensemble) for
every structure.  ``grid_floor_mae_*`` is the error of the *true* spectrum
resampled to the model grid: no model on that grid can do better on average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from betenet_model.ensemble import Ensemble
from stores.datasets import TrainingRecord
from workflows.common.physics import DEFAULT_MU_STAR, HIT_TC_K
from workflows.ml.data import record_sample, record_truth
from workflows.ml.predict import PROPERTIES, spectrum_properties, unknown_elements

_TRUTH_KEYS = {"lambda": "lambda_", "omega_log_K": "omega_log_K", "omega_2_K": "omega_2_K",
               "tc_K": "tc_allen_dynes_K"}
_SHORT = {"lambda": "lambda", "omega_log_K": "omega_log_K", "omega_2_K": "omega_2_K",
          "tc_K": "tc_K"}


def average_precision(labels: Sequence[bool] | np.ndarray,
                      scores: Sequence[float] | np.ndarray) -> float | None:
    """Average precision of ranking by ``scores`` (higher = more likely positive).

    AP = Σ_k (R_k − R_{k−1}) P_k over the ranks k (ties share their rank, as in
    scikit-learn).  ``None`` when there is no positive label.

    >>> average_precision([True, False, True], [0.9, 0.8, 0.1])
    0.8333333333333333
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if y.sum() == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], y.size - 1]   # last index of each tie group
    tp = np.cumsum(y)[distinct]
    precision = tp / (distinct + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _regression(true: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    err = pred - true
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": (1.0 - float(np.sum(err**2)) / ss_tot) if ss_tot > 0 and true.size > 1 else None,
    }


def evaluate_records(ensemble: Ensemble, records: Sequence[TrainingRecord],
                     mu_star: float = DEFAULT_MU_STAR, hit_tc_K: float = HIT_TC_K,
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and per-row results of ``ensemble`` on ``records``.

    Rows with α²F are scored on λ, ω_log, ω₂ and Tc (truth from their own spectrum); rows with
    only a Tc label (jarvis-tc) on Tc alone (truth = the label). The Tc metrics and the
    average precision cover every row; the others only the rows with a spectrum.

    Parameters
    ----------
    ensemble : Ensemble
    records : sequence of TrainingRecord
        Labelled rows (their variant's site DOS is needed for cpd/fpd).
    mu_star : float
        μ* of every Tc.
    hit_tc_K : float
        A hit is a true Tc above this (K).

    Returns
    -------
    metrics : dict
        ``n``, ``n_spectrum``, ``n_tc_only``; ``mae_tc_K``/``rmse_tc_K``/``r2_tc_K`` and
        ``baseline_*_tc_K`` (the mean training spectrum's Tc for every row);
        ``average_precision_tc5`` (None without a hit), ``random_average_precision_tc5``
        (the hit fraction), ``n_hits``, ``coverage_1sigma_tc_K``; where spectra exist also
        ``mae_*``/``rmse_*``/``r2_*`` and ``baseline_*`` for lambda, omega_log_K, omega_2_K,
        ``grid_floor_mae_*``, ``mse_spectrum``, ``baseline_mse_spectrum``,
        ``coverage_1sigma_lambda``; ``members``, ``mu_star``, ``variant``,
        ``rows_with_unknown_elements``.
    rows : list of dict
        Per record: truth, prediction mean ± σ, baseline (None where unknown).
    """
    if not records:
        raise ValueError("nothing to evaluate: no usable record")
    samples = [record_sample(r, ensemble.variant) for r in records]
    spectra = ensemble.predict_spectra(samples)                 # (M, n, 51)
    members = spectrum_properties(spectra, mu_star)              # (M, n)
    mean = {k: v.mean(axis=0) for k, v in members.items()}
    std = {k: (v.std(axis=0, ddof=1) if v.shape[0] > 1 else np.zeros(v.shape[1]))
           for k, v in members.items()}
    has = np.array([r.has_spectrum for r in records])
    spec_idx = np.nonzero(has)[0]
    truths = {int(j): record_truth(records[int(j)], mu_star) for j in spec_idx}
    true = {k: np.array([getattr(truths[j], _TRUTH_KEYS[k]) if j in truths else np.nan
                         for j in range(len(records))]) for k in PROPERTIES}
    true["tc_K"] = np.where(has, true["tc_K"],
                            [np.nan if r.tc_K is None else float(r.tc_K) for r in records])
    base_spec = ensemble.baseline_spectrum
    base = spectrum_properties(base_spec[None, :], mu_star)
    base = {k: np.full(len(records), float(v[0])) for k, v in base.items()}

    metrics: dict[str, Any] = {"n": len(records), "n_spectrum": int(has.sum()),
                               "n_tc_only": int((~has).sum()), "members": len(ensemble),
                               "mu_star": mu_star, "variant": ensemble.variant}
    for k in PROPERTIES:
        rows_k = np.arange(len(records)) if k == "tc_K" else spec_idx
        if rows_k.size == 0:
            continue
        name = _SHORT[k]
        for stat, value in _regression(true[k][rows_k], mean[k][rows_k]).items():
            metrics[f"{stat}_{name}"] = value
        for stat, value in _regression(true[k][rows_k], base[k][rows_k]).items():
            metrics[f"baseline_{stat}_{name}"] = value
    if spec_idx.size:
        targets = np.stack([np.asarray(samples[j].target) for j in spec_idx])
        floor = spectrum_properties(targets, mu_star)
        for k in PROPERTIES:
            metrics[f"grid_floor_mae_{_SHORT[k]}"] = float(
                np.mean(np.abs(floor[k] - true[k][spec_idx])))
        pred_mean_spec = spectra.mean(axis=0)[spec_idx]
        metrics["mse_spectrum"] = float(np.mean((pred_mean_spec - targets) ** 2))
        metrics["baseline_mse_spectrum"] = float(np.mean((base_spec[None, :] - targets) ** 2))
        metrics["coverage_1sigma_lambda"] = float(np.mean(
            np.abs(true["lambda"][spec_idx] - mean["lambda"][spec_idx]) <= std["lambda"][spec_idx]))
    hits = true["tc_K"] > hit_tc_K
    metrics["n_hits"] = int(hits.sum())
    metrics["average_precision_tc5"] = average_precision(hits, mean["tc_K"])
    metrics["random_average_precision_tc5"] = float(hits.mean())
    metrics["coverage_1sigma_tc_K"] = float(np.mean(np.abs(true["tc_K"] - mean["tc_K"])
                                                    <= std["tc_K"]))
    rows = []
    for j, rec in enumerate(records):
        unknown = unknown_elements(rec.structure, ensemble)
        row: dict[str, Any] = {"id": rec.id, "formula": rec.formula}
        for k in PROPERTIES:
            t = float(true[k][j])
            row[f"{k}_true"] = t if math.isfinite(t) else None
            row[f"{k}_pred"] = float(mean[k][j])
            row[f"{k}_std"] = float(std[k][j])
            row[f"{k}_baseline"] = float(base[k][j])
        row["unknown_elements"] = ",".join(unknown)
        rows.append(row)
    metrics["rows_with_unknown_elements"] = sum(1 for r in rows if r["unknown_elements"])
    for key, value in list(metrics.items()):
        if isinstance(value, float) and not math.isfinite(value):
            metrics[key] = None
    return metrics, rows


def out_of_bag_metrics(ensemble: Ensemble, records: Sequence[TrainingRecord],
                       mu_star: float = DEFAULT_MU_STAR) -> dict[str, Any]:
    """Errors of each training row predicted only by the members that did not see it.

    A bootstrap ensemble's honest in-sample score: row *j* is predicted by the
    mean over the members whose out-of-bag set holds *j* (rows no member left
    out are skipped).

    Parameters
    ----------
    ensemble : Ensemble
        Loaded with its member records (``member_XXX.json``).
    records : sequence of TrainingRecord
        The training rows (matched to the out-of-bag ids by ``id``).
    mu_star : float

    Returns
    -------
    dict
        ``n_oob`` rows scored, ``oob_mae_*`` for lambda, omega_log_K, omega_2_K, tc_K,
        ``oob_bias_*`` (mean of predicted − true: a systematic shift),
        ``oob_baseline_mae_*`` for the mean training spectrum on the same rows (that mean
        includes the scored row itself), and ``oob_inbag_baseline_mae_*``: each row scored by
        the mean in-bag spectrum of the members that left it out (bootstrap-weighted; what those
        members saw, and the spectrum an ``anchored`` head starts from). The in-bag keys are
        None when ``records`` lack some member's in-bag spectrum rows.
    """
    if not ensemble.member_info:
        raise ValueError("the ensemble has no member records (member_XXX.json); "
                         "out-of-bag scores need them")
    oob_sets = [set(m.get("out_of_bag_ids", [])) for m in ensemble.member_info]
    rows = [(j, r) for j, r in enumerate(records)
            if r.has_spectrum and any(r.id in s for s in oob_sets)]
    if not rows:
        raise ValueError("no record with a spectrum is out-of-bag for any member "
                         "(ids do not match?)")
    samples = [record_sample(r, ensemble.variant) for _, r in rows]
    members = spectrum_properties(ensemble.predict_spectra(samples), mu_star)   # (M, n)
    base = spectrum_properties(ensemble.baseline_spectrum[None, :], mu_star)
    inbag = _in_bag_mean_spectra(ensemble, records)
    inbag_props = None if inbag is None else spectrum_properties(inbag, mu_star)  # (M,)
    out: dict[str, Any] = {"n_oob": len(rows)}
    errors: dict[str, list[float]] = {k: [] for k in PROPERTIES}
    base_errors: dict[str, list[float]] = {k: [] for k in PROPERTIES}
    inbag_errors: dict[str, list[float]] = {k: [] for k in PROPERTIES}
    for i, (_, rec) in enumerate(rows):
        use = [m for m, s in enumerate(oob_sets) if rec.id in s]
        truth = record_truth(rec, mu_star)
        for k in PROPERTIES:
            t = getattr(truth, _TRUTH_KEYS[k])
            errors[k].append(float(members[k][use, i].mean()) - t)
            base_errors[k].append(abs(float(base[k][0]) - t))
            if inbag_props is not None:
                inbag_errors[k].append(abs(float(inbag_props[k][use].mean()) - t))
    for k in PROPERTIES:
        out[f"oob_mae_{_SHORT[k]}"] = float(np.mean(np.abs(errors[k])))
        out[f"oob_bias_{_SHORT[k]}"] = float(np.mean(errors[k]))
        out[f"oob_baseline_mae_{_SHORT[k]}"] = float(np.mean(base_errors[k]))
        out[f"oob_inbag_baseline_mae_{_SHORT[k]}"] = (
            float(np.mean(inbag_errors[k])) if inbag_props is not None else None)
    return out


def _in_bag_mean_spectra(ensemble: Ensemble,
                         records: Sequence[TrainingRecord]) -> np.ndarray | None:
    """``(M, bins)``: each member's bootstrap-weighted mean in-bag α²F (None: rows missing)."""
    training = ensemble.manifest.get("training_set", {})
    training_ids = set(training.get("ids", []))
    by_id = {r.id: r for r in records if r.has_spectrum and r.id in training_ids}
    if len(by_id) != training.get("n_spectrum"):
        return None                          # not every training spectrum is among ``records``
    targets: dict[str, np.ndarray] = {}
    out = []
    for info in ensemble.member_info:
        ids = [i for i in info.get("bootstrap_ids", {}) if i in by_id]
        if not ids:
            return None
        for i in ids:
            if i not in targets:
                targets[i] = np.asarray(record_sample(by_id[i], ensemble.variant).target)
        w = np.array([info["bootstrap_ids"][i] for i in ids], dtype=float)
        out.append(w @ np.stack([targets[i] for i in ids]) / w.sum())
    return np.stack(out)


def parity_plot(rows: Sequence[dict[str, Any]], path: str | Path,
                title: str = "") -> Path:
    """Parity plot (predicted ± σ against true) of λ, ω_log, ω₂ and Tc as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"lambda": "λ", "omega_log_K": "ω_log (K)", "omega_2_K": "ω₂ (K)",
              "tc_K": "Tc Allen–Dynes (K)"}
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, key in zip(axes, PROPERTIES, strict=True):
        known = [r for r in rows if r[f"{key}_true"] is not None]
        t = np.array([r[f"{key}_true"] for r in known])
        p = np.array([r[f"{key}_pred"] for r in known])
        s = np.array([r[f"{key}_std"] for r in known])
        b = rows[0][f"{key}_baseline"] if rows else 0.0
        ax.errorbar(t, p, yerr=s, fmt="o", ms=4, capsize=2, label="ensemble")
        ax.axhline(b, color="grey", ls=":", label="mean-spectrum baseline")
        lo = min(t.min(initial=0), p.min(initial=0))
        hi = max(t.max(initial=1), (p + s).max(initial=1)) * 1.05
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"true {labels[key]}")
        ax.set_ylabel(f"predicted {labels[key]}")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
