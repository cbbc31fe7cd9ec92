"""Score an ensemble on labelled records, next to the mean-spectrum baseline.

Truth for every row is computed from the record's own α²F (its native grid)
with :mod:`workflows.common.physics` (Allen–Dynes with f1·f2, μ* = 0.10 by
default); predictions are the ensemble mean of the per-member values.  The
baseline predicts the mean training spectrum (saved with the ensemble) for
every structure.  ``grid_floor_mae_*`` is the error of the *true* spectrum
resampled to the model grid: no model on that grid can do better on average.
:func:`evaluate_model` is ``bete evaluate``'s one call: the rows of ``--data`` sources, the
training-set overlap check, the scores (and out-of-bag scores) and the parity plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from betenet_model.ensemble import Ensemble
from stores.datasets import TrainingRecord
from workflows.common.physics import DEFAULT_MU_STAR, HIT_TC_K
from workflows.ml.data import record_sample, record_truth
from workflows.ml.mlip_inputs import MLIPNeeds, mlip_inputs, open_mlip_store, report_dropped
from workflows.ml.predict import (
    PROPERTIES,
    load_ensemble,
    member_properties,
    member_std,
    sigma_scale,
    spectrum_properties,
    unknown_elements,
)
from workflows.ml.training_data import DataOptions, load_training_data

_TRUTH_KEYS = {"lambda": "lambda_", "omega_log_K": "omega_log_K", "omega_2_K": "omega_2_K",
               "tc_K": "tc_allen_dynes_K"}
_SHORT = {"lambda": "lambda", "omega_log_K": "omega_log_K", "omega_2_K": "omega_2_K",
          "tc_K": "tc_K"}
CALIBRATION_COVERAGE = 0.6827
"""Share of out-of-bag truths the calibrated 1σ should hold (a normal 1σ band)."""


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


def samples_with_inputs(ensemble: Ensemble, records: Sequence[TrainingRecord],
                        mlip_store: Any = None, stored_only: bool = False,
                        say: Callable[[str], None] | None = None,
                        ) -> tuple[list[TrainingRecord], list[Any]]:
    """The records that have every input ``ensemble`` takes and their samples on its grid.

    Rows whose atom features or phonon DOS cannot be had are left out with one line to ``say``.
    """
    needs = MLIPNeeds.of_ensemble(ensemble)
    rows = mlip_inputs([(r.id, r.structure) for r in records], needs, mlip_store, stored_only,
                       say)
    report_dropped([r.id for r in records], rows, "evaluation", say or (lambda _m: None))
    keep = [k for k, row in enumerate(rows) if "error" not in row]
    kept = [records[k] for k in keep]
    return kept, [record_sample(records[k], ensemble.variant, ensemble.grid, rows[k])
                  for k in keep]


def evaluate_records(ensemble: Ensemble, records: Sequence[TrainingRecord],
                     mu_star: float = DEFAULT_MU_STAR, hit_tc_K: float = HIT_TC_K,
                     mlip_store: Any = None, stored_only: bool = False,
                     say: Callable[[str], None] | None = None,
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
    mlip_store, stored_only, say
        Where the atom features / phonon DOS an ensemble may take come from
        (:func:`samples_with_inputs`); rows without them are left out (``n_left_out``).

    Returns
    -------
    metrics : dict
        ``n``, ``n_spectrum``, ``n_tc_only``; ``mae_tc_K``/``rmse_tc_K``/``r2_tc_K`` and
        ``baseline_*_tc_K`` (the mean training spectrum's Tc for every row);
        ``average_precision_tc5`` (None without a hit), ``random_average_precision_tc5``
        (the hit fraction), ``n_hits``, ``coverage_1sigma_tc_K`` (share of rows whose truth
        lies within the calibrated 1σ, ``sigma_calibrated`` says whether the ensemble has a
        calibration); where spectra exist also ``mae_*``/``rmse_*``/``r2_*`` and
        ``baseline_*`` for lambda, omega_log_K, omega_2_K, ``grid_floor_mae_*``,
        ``mse_spectrum``, ``baseline_mse_spectrum``, ``coverage_1sigma_lambda``; with a Tc
        head ``mae_tc_head_K`` and ``average_precision_tc5_head`` (its direct Tc); ``members``,
        ``mu_star``, ``variant``, ``rows_with_unknown_elements``.
    rows : list of dict
        Per record: truth, prediction mean ± σ (calibrated), baseline (None where unknown).
    """
    n_given = len(records)
    records, samples = samples_with_inputs(ensemble, records, mlip_store, stored_only, say)
    if not records:
        raise ValueError("nothing to evaluate: no usable record")
    members, spectra = member_properties(ensemble, samples, mu_star)       # (M, n)
    mean = {k: v.mean(axis=0) for k, v in members.items()}
    std = {k: member_std(v) * sigma_scale(ensemble, k) for k, v in members.items()}
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
                               "mu_star": mu_star, "variant": ensemble.variant,
                               "n_left_out": n_given - len(records),
                               "sigma_calibrated": bool(
                                   (ensemble.manifest.get("calibration") or {}).get(
                                       "sigma_scale"))}
    for k in PROPERTIES:
        rows_k = np.arange(len(records)) if k == "tc_K" else spec_idx
        if rows_k.size == 0:
            continue
        name = _SHORT[k]
        for stat, value in _regression(true[k][rows_k], mean[k][rows_k]).items():
            metrics[f"{stat}_{name}"] = value
        for stat, value in _regression(true[k][rows_k], base[k][rows_k]).items():
            metrics[f"baseline_{stat}_{name}"] = value
    if "tc_head_K" in mean:
        metrics["mae_tc_head_K"] = float(np.mean(np.abs(mean["tc_head_K"] - true["tc_K"])))
    if spec_idx.size:
        metrics.update(_spectrum_metrics([samples[j] for j in spec_idx], spec_idx, spectra,
                                         base_spec, true, mean, std, mu_star))
    hits = true["tc_K"] > hit_tc_K
    metrics["n_hits"] = int(hits.sum())
    metrics["average_precision_tc5"] = average_precision(hits, mean["tc_K"])
    if "tc_head_K" in mean:
        metrics["average_precision_tc5_head"] = average_precision(hits, mean["tc_head_K"])
    metrics["random_average_precision_tc5"] = float(hits.mean())
    metrics["coverage_1sigma_tc_K"] = float(np.mean(np.abs(true["tc_K"] - mean["tc_K"])
                                                    <= std["tc_K"]))
    rows = _result_rows(ensemble, records, true, mean, std, base)
    metrics["rows_with_unknown_elements"] = sum(1 for r in rows if r["unknown_elements"])
    for key, value in list(metrics.items()):
        if isinstance(value, float) and not math.isfinite(value):
            metrics[key] = None
    return metrics, rows


def _spectrum_metrics(samples: Sequence[Any], spec_idx: np.ndarray, spectra: np.ndarray,
                      base_spec: np.ndarray, true: dict[str, np.ndarray],
                      mean: dict[str, np.ndarray], std: dict[str, np.ndarray],
                      mu_star: float) -> dict[str, float]:
    """Grid floor, spectrum MSE (model and baseline) and λ coverage of the spectrum rows."""
    targets = np.stack([np.asarray(s.target) for s in samples])
    floor = spectrum_properties(targets, mu_star)
    out = {f"grid_floor_mae_{_SHORT[k]}": float(np.mean(np.abs(floor[k] - true[k][spec_idx])))
           for k in PROPERTIES}
    out["mse_spectrum"] = float(np.mean((spectra.mean(axis=0)[spec_idx] - targets) ** 2))
    out["baseline_mse_spectrum"] = float(np.mean((base_spec[None, :] - targets) ** 2))
    out["coverage_1sigma_lambda"] = float(np.mean(
        np.abs(true["lambda"][spec_idx] - mean["lambda"][spec_idx]) <= std["lambda"][spec_idx]))
    return out


def _result_rows(ensemble: Ensemble, records: Sequence[TrainingRecord],
                 true: dict[str, np.ndarray], mean: dict[str, np.ndarray],
                 std: dict[str, np.ndarray], base: dict[str, np.ndarray],
                 ) -> list[dict[str, Any]]:
    """Per record: truth (None where unknown), prediction mean ± σ, baseline."""
    rows = []
    for j, rec in enumerate(records):
        row: dict[str, Any] = {"id": rec.id, "formula": rec.formula}
        for k in PROPERTIES:
            t = float(true[k][j])
            row[f"{k}_true"] = t if math.isfinite(t) else None
            row[f"{k}_pred"] = float(mean[k][j])
            row[f"{k}_std"] = float(std[k][j])
            row[f"{k}_baseline"] = float(base[k][j])
        if "tc_head_K" in mean:
            row["tc_head_K_pred"] = float(mean["tc_head_K"][j])
            row["tc_head_K_std"] = float(std["tc_head_K"][j])
        row["unknown_elements"] = ",".join(unknown_elements(rec.structure, ensemble))
        rows.append(row)
    return rows


def out_of_bag_predictions(ensemble: Ensemble, records: Sequence[TrainingRecord],
                           mu_star: float = DEFAULT_MU_STAR, mlip_store: Any = None,
                           stored_only: bool = False,
                           say: Callable[[str], None] | None = None,
                           samples: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Each training row predicted only by the members that left it out (spectrum and Tc rows).

    ``samples``: the model samples of ``records`` (one each, inputs included) when already at
    hand; otherwise they are made here.

    Returns one dict per row some member left out: ``id``, ``has_spectrum``, ``n_members``
    (members that left it out), and for every quantity it has a truth for (λ, ω_log, ω₂ only
    on spectrum rows) ``true``, ``pred`` (mean of those members) and ``spread`` (their
    standard deviation, None with one member), under ``{key: {...}}``.
    """
    if not ensemble.member_info:
        raise ValueError("the ensemble has no member records (member_XXX.json); "
                         "out-of-bag scores need them")
    oob_sets = [set(m.get("out_of_bag_ids", [])) for m in ensemble.member_info]
    left_out = [any(r.id in s for s in oob_sets) for r in records]
    if samples is not None:
        chosen = [r for r, keep in zip(records, left_out, strict=True) if keep]
        samples = [x for x, keep in zip(samples, left_out, strict=True) if keep]
    else:
        chosen = [r for r, keep in zip(records, left_out, strict=True) if keep]
        if chosen:
            chosen, samples = samples_with_inputs(ensemble, chosen, mlip_store, stored_only,
                                                  say)
    if not chosen or samples is None:
        return []
    members, _ = member_properties(ensemble, samples, mu_star)              # (M, n)
    out = []
    for i, rec in enumerate(chosen):
        use = [m for m, s in enumerate(oob_sets) if rec.id in s]
        truth = record_truth(rec, mu_star) if rec.has_spectrum else None
        row: dict[str, Any] = {"id": rec.id, "has_spectrum": rec.has_spectrum,
                               "n_members": len(use)}
        for k in members:
            if truth is not None:
                t = getattr(truth, _TRUTH_KEYS["tc_K" if k == "tc_head_K" else k])
            elif k in ("tc_K", "tc_head_K"):
                t = float(rec.tc_K)   # type: ignore[arg-type]
            else:
                continue
            v = members[k][use, i]
            row[k] = {"true": float(t), "pred": float(v.mean()),
                      "spread": float(v.std(ddof=1)) if len(use) > 1 else None}
        out.append(row)
    return out


def fit_sigma_scale(oob_rows: Sequence[dict[str, Any]], keys: Sequence[str] = PROPERTIES,
                    coverage: float = CALIBRATION_COVERAGE) -> dict[str, Any]:
    """Factors s per quantity so that ``|true − pred| ≤ s · spread`` on ``coverage`` of rows.

    The empirical quantile of |error| / spread over the out-of-bag rows; rows predicted by a
    single member have no spread and are skipped.

    Returns ``{"sigma_scale": {key: s}, "n_rows": {key: n}, "coverage": target,
    "raw_coverage": {key: share within 1 unscaled spread}}``.
    """
    scales: dict[str, float] = {}
    counts: dict[str, int] = {}
    raw: dict[str, float] = {}
    for k in keys:
        pairs = [(abs(r[k]["true"] - r[k]["pred"]), r[k]["spread"]) for r in oob_rows
                 if k in r and r[k]["spread"] is not None]
        if len(pairs) < 5:
            continue
        err = np.array([e for e, _ in pairs])
        spread = np.array([s for _, s in pairs])
        ratio = np.divide(err, spread, out=np.where(err > 0, np.inf, 0.0), where=spread > 0)
        finite = np.isfinite(ratio)
        if finite.mean() < coverage:        # too many rows with no spread at all
            continue
        scales[k] = float(np.quantile(ratio, coverage))
        counts[k] = len(pairs)
        raw[k] = float(np.mean(err <= spread))
    return {"sigma_scale": scales, "n_rows": counts, "coverage": coverage,
            "raw_coverage": raw}


def out_of_bag_metrics(ensemble: Ensemble, records: Sequence[TrainingRecord],
                       mu_star: float = DEFAULT_MU_STAR, mlip_store: Any = None,
                       stored_only: bool = False,
                       say: Callable[[str], None] | None = None,
                       samples: Sequence[Any] | None = None) -> dict[str, Any]:
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
    mlip_store, stored_only, say
        As for :func:`evaluate_records`.
    samples : sequence, optional
        The samples of ``records`` when already made (see :func:`out_of_bag_predictions`).

    Returns
    -------
    dict
        ``n_oob`` spectrum rows scored, ``oob_mae_*`` for lambda, omega_log_K, omega_2_K,
        tc_K, ``oob_bias_*`` (mean of predicted − true: a systematic shift),
        ``oob_baseline_mae_*`` for the mean training spectrum on the same rows (that mean
        includes the scored row itself), and ``oob_inbag_baseline_mae_*``: each row scored by
        the mean in-bag spectrum of the members that left it out (bootstrap-weighted; what those
        members saw, and the spectrum an ``anchored`` head starts from). The in-bag keys are
        None when ``records`` lack some member's in-bag spectrum rows. Also
        ``oob_coverage_1sigma_*``: the share of rows whose truth lies within the calibrated
        1σ of the members that left them out (λ, ω's on spectrum rows; Tc on every row, with
        ``oob_n_tc`` rows and ``oob_mae_tc_K_all_rows``).
    """
    oob = out_of_bag_predictions(ensemble, records, mu_star, mlip_store, stored_only, say,
                                 samples)
    rows = [r for r in oob if r["has_spectrum"]]
    if not rows:
        raise ValueError("no record with a spectrum is out-of-bag for any member "
                         "(ids do not match?)")
    base = spectrum_properties(ensemble.baseline_spectrum[None, :], mu_star)
    inbag = _in_bag_mean_spectra(ensemble, records)
    inbag_props = None if inbag is None else spectrum_properties(inbag, mu_star)  # (M,)
    oob_sets = [set(m.get("out_of_bag_ids", [])) for m in ensemble.member_info]
    out: dict[str, Any] = {"n_oob": len(rows)}
    for k in PROPERTIES:
        err = np.array([r[k]["pred"] - r[k]["true"] for r in rows])
        truth = np.array([r[k]["true"] for r in rows])
        out[f"oob_mae_{_SHORT[k]}"] = float(np.mean(np.abs(err)))
        out[f"oob_bias_{_SHORT[k]}"] = float(np.mean(err))
        out[f"oob_baseline_mae_{_SHORT[k]}"] = float(np.mean(np.abs(float(base[k][0]) - truth)))
        if inbag_props is not None:
            vals = [float(inbag_props[k][[m for m, s in enumerate(oob_sets) if r["id"] in s]]
                          .mean()) for r in rows]
            out[f"oob_inbag_baseline_mae_{_SHORT[k]}"] = float(np.mean(np.abs(
                np.array(vals) - truth)))
        else:
            out[f"oob_inbag_baseline_mae_{_SHORT[k]}"] = None
    if "tc_head_K" in rows[0]:
        out["oob_mae_tc_head_K"] = float(np.mean([abs(r["tc_head_K"]["pred"]
                                                      - r["tc_head_K"]["true"]) for r in rows]))
    for k in PROPERTIES:
        scored = [r for r in (oob if k == "tc_K" else rows) if r[k]["spread"] is not None]
        if scored:
            s = sigma_scale(ensemble, k)
            out[f"oob_coverage_1sigma_{_SHORT[k]}"] = float(np.mean(
                [abs(r[k]["true"] - r[k]["pred"]) <= s * r[k]["spread"] for r in scored]))
    out["oob_n_tc"] = len(oob)
    out["oob_mae_tc_K_all_rows"] = float(np.mean([abs(r["tc_K"]["true"] - r["tc_K"]["pred"])
                                                  for r in oob]))
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
                targets[i] = np.asarray(record_sample(by_id[i], ensemble.variant,
                                                         ensemble.grid).target)
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


def calibrate(ensemble: Ensemble, records: Sequence[TrainingRecord],
              samples: Sequence[Any] | None = None, mu_star: float = DEFAULT_MU_STAR,
              mlip_store: Any = None) -> dict[str, Any] | None:
    """Fit the σ scale of every quantity on the out-of-bag rows and write it to the manifest.

    ``ensemble.json`` gets ``calibration`` (:func:`fit_sigma_scale`, plus ``mu_star`` and the
    number of out-of-bag rows); :func:`workflows.ml.predict.sigma_scale` reads it. Returns it,
    or None (nothing written) when no row has out-of-bag predictions of two members.
    """
    from betenet_model import checkpoint as ckpt

    oob = out_of_bag_predictions(ensemble, records, mu_star, mlip_store, samples=samples)
    keys = [*PROPERTIES, *(["tc_head_K"] if ensemble.has_tc_head else [])]
    fit = fit_sigma_scale(oob, keys)
    if not fit["sigma_scale"]:
        return None
    calibration = {**fit, "mu_star": mu_star, "n_oob_rows": len(oob),
                   "method": "quantile of |out-of-bag error| / out-of-bag member spread"}
    ensemble.manifest["calibration"] = calibration
    if ensemble.folder is not None:
        path = ensemble.folder / ckpt.MANIFEST
        manifest = ckpt.read_json(path)
        manifest["calibration"] = calibration
        ckpt.write_json(path, manifest)
    return calibration


@dataclass
class ModelEvaluation:
    """What :func:`evaluate_model` found: the metrics, one row per scored record, the overlap."""

    metrics: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    rows_in_training_set: int = 0
    """Scored rows whose id is in the ensemble's training set (their scores are in-sample)."""


def evaluate_model(model: Ensemble | str | Path | None, data: DataOptions, *,
                   held_out: bool = False, allow_overlap: bool = False,
                   out_of_bag: bool = False, parity: str | Path | None = None,
                   mu_star: float = DEFAULT_MU_STAR,
                   say: Callable[[str], None] | None = None) -> ModelEvaluation:
    """Score an ensemble on the rows ``data`` names (what ``bete evaluate`` does).

    Parameters
    ----------
    model : Ensemble, path or None
        A loaded ensemble, its folder, or None for the shipped one.
    data : DataOptions
        Sources, protocol and split side (:func:`workflows.ml.training_data.load_training_data`);
        ``data.phonon_store`` holds the MLIP inputs the ensemble takes, if any.
    held_out : bool
        Score only the rows that are not in the ensemble's training set.
    allow_overlap : bool
        Score rows of the training set anyway (in-sample; a warning goes to ``say``).
    out_of_bag : bool
        Add the ``oob_*`` metrics (:func:`out_of_bag_metrics`); training rows are then allowed.
    parity : path, optional
        Where to write the parity plot (:func:`parity_plot`).
    mu_star : float
        μ* of every Tc.

    Raises
    ------
    ValueError
        Rows that cannot be read; rows of the training set without ``allow_overlap`` or
        ``out_of_bag``; every row in the training set with ``held_out``.
    """
    tell = say or (lambda _m: None)
    ensemble = model if isinstance(model, Ensemble) else load_ensemble(model)
    records = load_training_data(data, ensemble.variant, tell)
    records, seen = _outside_training_set(ensemble, records, held_out,
                                          allow_overlap or out_of_bag, out_of_bag, tell)
    mlip_store = None
    needs = MLIPNeeds.of_ensemble(ensemble)
    if needs:
        tell(f"model inputs: {needs.describe()} (stored documents reused, missing ones "
             "computed and stored)")
        mlip_store = open_mlip_store(data.phonon_store)
    try:
        metrics, rows = evaluate_records(ensemble, records, mu_star=mu_star,
                                         mlip_store=mlip_store, say=say)
        if out_of_bag:
            metrics.update(out_of_bag_metrics(ensemble, records, mu_star=mu_star,
                                              mlip_store=mlip_store, say=say))
    finally:
        if mlip_store is not None:
            mlip_store.close()
    if parity:
        parity_plot(rows, parity, title=f"{ensemble.variant} ensemble, n = {len(rows)}")
        tell(f"parity plot written to {parity}")
    return ModelEvaluation(metrics, rows, len(seen))


def _outside_training_set(ensemble: Ensemble, records: list[TrainingRecord], held_out: bool,
                          allow_overlap: bool, out_of_bag: bool, say: Callable[[str], None]
                          ) -> tuple[list[TrainingRecord], list[str]]:
    """The rows to score and the ids among them that the ensemble was trained on.

    ``held_out`` drops the training rows; otherwise they are refused unless
    ``allow_overlap`` (then a warning is said).
    """
    trained = set(ensemble.manifest.get("training_set", {}).get("ids") or [])
    seen = [r.id for r in records if r.id in trained]
    if held_out:
        records = [r for r in records if r.id not in trained]
        if not records:
            raise ValueError("every row of the data was in the training set (--held-out)")
        return records, []
    if seen:
        what = (f"{len(seen)} of the {len(records)} rows (ids {', '.join(seen[:8])}"
                f"{', ...' if len(seen) > 8 else ''}) are in the model's training set, so "
                "their scores are in-sample")
        if not allow_overlap:
            raise ValueError(f"{what}; use --held-out to score only the other rows, --out-of-bag "
                             "for honest scores of training rows, or --allow-overlap to score "
                             "them anyway")
        say(f"warning: {what}" + ("; see the oob_* metrics for out-of-bag scores"
                                  if out_of_bag else ""))
    return records, seen
