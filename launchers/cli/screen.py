"""``bete screen`` and ``bete al run|status|report``: screening and active learning.

Examples
--------
Rank a folder of CIFs with an ensemble, verify the best two with DFPT::

    bete screen candidates/ --model runs/cso --store ~/.bete/store --top-k 2 \
        --acquisition ucb --verify --preset fast

An ensemble put into the store by ``bete train --store`` is named ``store:MODEL_ID``::

    bete screen candidates/ --model store:cso-0123456789ab-m5-a1b2c3 --store ~/.bete/store

Two active-learning rounds (train → screen → verify → ingest), then their summary::

    bete al run --store runs/al-store --candidates candidates/ --rounds 2 --top-k 2
    bete al status --store runs/al-store --format json
    bete al report --store runs/al-store --out al.png
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from launchers.cli.common import (
    WHY_FAST_FOR_TRAINING,
    UserError,
    add_format_argument,
    add_max_atoms_argument,
    add_preset_argument,
    format_rows,
    open_store,
    parse_network,
    preset_line,
    progress,
)

RANK_COLUMNS = ["rank", "candidate_id", "formula", "score", "tc_K_mean", "tc_K_std",
                "prob_tc_above", "lambda_mean", "lambda_std", "omega_log_K_mean", "warnings"]
VERIFY_COLUMNS = ["candidate_id", "formula", "status", "tc_K_predicted", "tc_K_std",
                  "tc_K_computed", "lambda_predicted", "lambda_computed",
                  "omega_log_K_predicted", "omega_log_K_computed", "reused", "error"]


def _add_dfpt_options(p: argparse.ArgumentParser) -> None:
    add_preset_argument(p, "DFPT preset of the verification (default fast)", validate=True)
    p.add_argument("--override", metavar="JSON_OR_FILE",
                   help="preset overrides (JSON text or a JSON/YAML file)")
    p.add_argument("--pseudos", metavar="FAMILY", help="pseudopotential family (directory or "
                   "SSSP-style JSON; default: settings, else Debian's LDA files)")
    add_max_atoms_argument(p)


def _add_prescreen_options(p: argparse.ArgumentParser) -> None:
    from workflows.mlip.potentials import DEFAULT_POTENTIAL, POTENTIALS
    from workflows.screening.prescreen import DEFAULT_PRESCREEN_THRESHOLD_MEV

    p.add_argument("--no-prescreen", action="store_true",
                   help="send the top-k to DFPT without the MLIP stability pre-screen")
    p.add_argument("--prescreen-threshold", type=float, metavar="MEV",
                   default=DEFAULT_PRESCREEN_THRESHOLD_MEV,
                   help="skip DFPT for candidates whose MLIP lowest phonon frequency is below "
                   f"this (meV, default {DEFAULT_PRESCREEN_THRESHOLD_MEV:g}; see "
                   "docs/mlip-phonons.md)")
    p.add_argument("--prescreen-potential", choices=sorted(POTENTIALS),
                   default=DEFAULT_POTENTIAL,
                   help=f"potential of the pre-screen (default {DEFAULT_POTENTIAL})")


def _add_ranking_options(p: argparse.ArgumentParser, default: str) -> None:
    from workflows.screening.acquisition import ACQUISITIONS

    described = ", ".join(f"{name} ({a.description})" for name, a in ACQUISITIONS.items())
    p.add_argument("--acquisition", choices=tuple(ACQUISITIONS), default=default,
                   help=f"ranking: {described}; default {default}")
    p.add_argument("--kappa", type=float, default=1.0, help="UCB weight (default 1)")
    p.add_argument("--threshold", type=float, default=5.0, help="PI threshold in K (default 5)")
    p.add_argument("--max-per-chemsys", type=int,
                   help="diversity: at most N ranked candidates per chemical system")
    p.add_argument("--chunk-size", type=int, default=500,
                   help="candidates per prediction job (default 500)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete screen`` and ``bete al``."""
    s = sub.add_parser("screen", help="rank candidate structures by predicted Tc",
                       description="Predict Tc (mean ± σ) of candidates with an ensemble, "
                       "rank them by an acquisition function, store screening documents and "
                       "optionally verify the top-k with the DFPT el-ph flow.")
    s.add_argument("candidates", nargs="+", metavar="CANDIDATES",
                   help="structure files, folders of them (BETE-NET <index>.cif folders too), "
                   "JSON/JSONL of pymatgen structures, or 'store'")
    s.add_argument("--model", metavar="DIR|store:ID",
                   help="ensemble folder, or store:MODEL_ID for an ensemble in --store "
                   "(default: the shipped ensemble)")
    s.add_argument("--store", help="store directory or YAML spec (default: settings)")
    s.add_argument("--top-k", type=int, default=10, help="rows shown / verified (default 10)")
    _add_ranking_options(s, "mean")
    add_format_argument(s)
    s.add_argument("--out", metavar="CSV", help="also write the full ranking to a CSV file")
    s.add_argument("--round", type=int, help="round number recorded in the documents")
    s.add_argument("--campaign", help="campaign name recorded in the documents")
    s.add_argument("--verify", action="store_true", help="run the top-k through DFPT here")
    s.add_argument("--submit", action="store_true",
                   help="submit the top-k DFPT flows to the FireWorks LaunchPad instead")
    s.add_argument("--launchpad", help="my_launchpad.yaml for --submit")
    s.add_argument("--compute-phonons", action="store_true",
                   help="cpd/fpd models: run a coarse 2x2x2 phonon-only DFPT here for "
                   "candidates without a stored phonon DOS (about half a fast el-ph run each)")
    _add_dfpt_options(s)
    _add_prescreen_options(s)
    s.set_defaults(func=screen_command)

    al = sub.add_parser("al", help="active learning: run, status, report")
    actions = al.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    r = actions.add_parser("run", help="run active-learning rounds (resumable)",
                           description="Each round: train (or reuse) → screen the candidates "
                           "→ verify the top-k with DFPT → ingest. Rerun the same command to "
                           "resume an interrupted campaign; finished calculations and models "
                           "are reused.")
    r.add_argument("--store", help="store directory or YAML spec (default: settings)")
    r.add_argument("--candidates", nargs="+", required=True, metavar="CANDIDATES",
                   help="candidate structures: folders, files, JSON/JSONL, or 'store'")
    r.add_argument("--rounds", type=int, default=1,
                   help="rounds to run (a rerun continues after the last finished round)")
    r.add_argument("--top-k", type=int, default=2,
                   help="candidates verified with DFPT per round")
    r.add_argument("--model", help="round-1 ensemble (default: the shipped one)")
    r.add_argument("--campaign", default="default",
                   help="campaign name: rounds, documents and models are kept per campaign")
    r.add_argument("--initial-data", help="initial training data (default: packaged fast-v1)")
    r.add_argument("--members", type=int, default=3, help="members of retrained ensembles")
    r.add_argument("--max-epochs", type=int, default=300,
                   help="epoch cap of each retrained member")
    r.add_argument("--seed", type=int, default=0,
                   help="seed of retraining (bootstrap resamples and weights)")
    r.add_argument("--network", action="append", metavar="KEY=VALUE",
                   help="network option of retrained ensembles (e.g. mul=8)")
    r.add_argument("--models-dir", help="where ensembles go (default <store>/models)")
    r.add_argument("--submit", action="store_true",
                   help="submit verifications to FireWorks; rerun once workers finished")
    r.add_argument("--launchpad", help="my_launchpad.yaml for --submit")
    _add_ranking_options(r, "ucb")
    _add_dfpt_options(r)
    _add_prescreen_options(r)
    r.set_defaults(func=al_run_command)

    st = actions.add_parser("status", help="one row per round",
                            description="One row per active-learning round of a campaign: "
                            "model, screened, submitted, verified, hits, errors.")
    st.add_argument("--store", help="store directory or YAML spec (default: settings)")
    st.add_argument("--campaign", help="campaign name (default: every campaign in the store)")
    add_format_argument(st, help_text="output format")
    st.set_defaults(func=al_status_command)

    rp = actions.add_parser("report", help="PNG of the campaign and a text summary",
                            description="Plot a campaign's rounds (hits, best Tc, error of "
                            "the predictions) into --out and print a summary.")
    rp.add_argument("--store", help="store directory or YAML spec (default: settings)")
    rp.add_argument("--campaign", help="campaign name (default: the store's only campaign)")
    rp.add_argument("--out", required=True, metavar="PNG", help="figure to write")
    rp.set_defaults(func=al_report_command)


# --------------------------------------------------------------------------- helpers
def _overrides(value: str | None) -> dict[str, Any]:
    from launchers.cli.elph_args import load_overrides

    return load_overrides(value)


def _submitter(args: argparse.Namespace) -> Any:
    """``--submit``: each DFPT flow goes to the FireWorks LaunchPad (None: run here)."""
    from launchers.fireworks import launchpad_submitter

    return launchpad_submitter(args.launchpad) if args.submit else None


def _errors() -> tuple[type[Exception], ...]:
    """What the screening and verification workflows raise that a user can fix."""
    from launchers.fireworks import LaunchPadError
    from workflows.qe.errors import QEError, QENotInstalledError

    return (ValueError, FileNotFoundError, QEError, QENotInstalledError, LaunchPadError)


# --------------------------------------------------------------------------- screen
def screen_request(args: argparse.Namespace) -> Any:
    """The :class:`~workflows.screening.screen_verify.ScreenRequest` of ``bete screen``."""
    from launchers.cli.model import resolve_model
    from workflows.screening.flows import ScreeningFlowMaker
    from workflows.screening.prescreen import StabilityPrescreen
    from workflows.screening.screen_verify import ScreenRequest, Verification

    if args.top_k < 1:
        raise UserError("--top-k must be at least 1")
    try:
        return ScreenRequest(
            candidates=list(args.candidates), model_dir=resolve_model(args.model, args.store),
            ranking=ScreeningFlowMaker(acquisition=args.acquisition, chunk_size=args.chunk_size,
                                       kappa=args.kappa, threshold_K=args.threshold,
                                       max_per_chemsys=args.max_per_chemsys),
            top_k=args.top_k, verify=args.verify or args.submit, round_number=args.round,
            campaign=args.campaign, compute_phonons=args.compute_phonons,
            verification=Verification(
                preset=args.preset, overrides=_overrides(args.override), pseudos=args.pseudos,
                max_atoms=args.max_atoms, prescreen=StabilityPrescreen(
                    enabled=not args.no_prescreen, potential=args.prescreen_potential,
                    threshold_meV=args.prescreen_threshold)))
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def screen_command(args: argparse.Namespace) -> int:
    """``bete screen``: parse, screen and verify (one workflow), print."""
    from workflows.screening.screen_verify import screen_and_verify

    request = screen_request(args)
    store = open_store(args.store, write=True)
    try:
        result = screen_and_verify(request, store, submit=_submitter(args), say=progress,
                                   verbose=args.verbose)
    except _errors() as exc:
        raise UserError(str(exc)) from exc
    finally:
        store.close()
    print_screening(args, result)
    return 1 if any(v.get("error") for v in result.verification) else 0


def print_screening(args: argparse.Namespace, result: Any) -> None:
    """The ranking (``--top-k`` rows), what was left out and the verification rows."""
    checked, ranked, verified = result.screened.checked, result.ranked, result.verification
    rows = [{**{k: r.get(k) for k in RANK_COLUMNS}, "acquisition": r["acquisition"],
             "model_id": r["model_id"], "source": r.get("source"), "status": "ranked"}
            for r in ranked]
    for r in rows:
        if isinstance(r.get("warnings"), list):
            r["warnings"] = "; ".join(r["warnings"])
    if args.out:
        _write_csv(args.out, rows + [{**x.as_dict(), "status": "rejected"}
                                     for x in checked.rejected])
        progress(f"wrote {args.out}")
    shown = rows[:args.top_k]
    if args.format == "json":
        out = shown + [{**x.as_dict(), "candidate_id": x.id, "status": "rejected",
                        "rank": None} for x in checked.rejected]
        for o in out:
            o.pop("id", None)
        for v in verified:
            for o in out:
                if o.get("candidate_id") == v["candidate_id"]:
                    o["verification"] = v
        print(format_rows(out, "json"))
        return
    print(format_rows(shown, args.format, RANK_COLUMNS))
    if checked.rejected and args.format == "table":
        progress("left out:\n" + format_rows([x.as_dict() for x in checked.rejected],
                                             "table", ["id", "formula", "reason", "detail"]))
    if verified:
        progress("verification:\n" + format_rows(verified, "table", VERIFY_COLUMNS))


def _write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in cols})


# --------------------------------------------------------------------------- al

STATUS_COLUMNS = ["round", "status", "model_id", "n_training", "n_screened", "submitted",
                  "verified", "hits_tc5", "hit_rate", "mae_tc_K_new", "best_tc_K"]


def status_rows(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary object per round (``bete al status``): counts are integers."""
    rows = []
    for d in rounds:
        m = d.get("metrics") or {}
        rows.append({
            "round": int(d["round"]), "campaign": d.get("campaign"), "status": d.get("status"),
            "model_id": d.get("model_id"), "acquisition": d.get("acquisition"),
            "n_training": d.get("n_training"), "n_screened": int(d.get("n_screened") or 0),
            "submitted": len(d.get("submitted") or []),
            "verified": len(d.get("verified") or []),
            "hits_tc5": int(m.get("hits_tc5") or 0), "hit_rate": m.get("hit_rate"),
            "mae_tc_K_new": m.get("mae_tc_K_new"), "best_tc_K": m.get("best_tc_K"),
            "submitted_ids": list(d.get("submitted") or []),
            "verified_ids": list(d.get("verified") or []),
            "training_set_hash": d.get("training_set_hash"),
        })
    return rows


def al_config(args: argparse.Namespace) -> Any:
    """The :class:`ActiveLearningConfig` of ``bete al run`` arguments."""
    from workflows.screening.active_learning import ActiveLearningConfig

    try:
        return ActiveLearningConfig(
            candidates=list(args.candidates), rounds=args.rounds, top_k=args.top_k,
            preset=args.preset, model=args.model, overrides=_overrides(args.override),
            pseudos=args.pseudos, acquisition=args.acquisition, kappa=args.kappa,
            threshold_K=args.threshold, max_per_chemsys=args.max_per_chemsys,
            chunk_size=args.chunk_size, campaign=args.campaign,
            initial_data=args.initial_data, members=args.members, max_epochs=args.max_epochs,
            seed=args.seed, network=parse_network(args.network), models_dir=args.models_dir,
            max_atoms=args.max_atoms, prescreen=not args.no_prescreen,
            prescreen_potential=args.prescreen_potential,
            prescreen_threshold_meV=args.prescreen_threshold)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def run_rounds(config: Any, store_spec: str | None, verbose: bool = False,
               submit: Any = None) -> list[Any]:
    """Run the active-learning rounds of ``config``; user-fixable failures become UserError.

    ``submit(flow)`` hands DFPT flows to workers (None = verify here with QE); the rounds
    are printed as a status table on stdout and returned.
    """
    import torch

    from workflows.screening.active_learning import run_active_learning

    torch.set_num_threads(1)
    store = open_store(store_spec, write=True)
    try:
        rounds = run_active_learning(config, store, store_spec=store_spec, submit=submit,
                                     say=progress, verbose=verbose)
    except _errors() as exc:
        raise UserError(str(exc)) from exc
    finally:
        store.close()
    print(format_rows(status_rows(rounds), "table", STATUS_COLUMNS))
    return rounds


def al_run_command(args: argparse.Namespace) -> int:
    """``bete al run``: parse, run the rounds (one workflow), print their status."""
    config = al_config(args)
    progress(preset_line("al run", args.preset, WHY_FAST_FOR_TRAINING))
    run_rounds(config, args.store, args.verbose, _submitter(args))
    return 0


def _rounds(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Round documents of ``--campaign``, or of every campaign when it is not given."""
    from stores.records import load_rounds

    store = open_store(args.store, write=False)
    try:
        return load_rounds(store, args.campaign)
    finally:
        store.close()


def _no_rounds(args: argparse.Namespace) -> str:
    which = f"of campaign {args.campaign!r} " if args.campaign else ""
    return f"no active-learning round {which}in the store; run `bete al run` (or `bete demo`)"


def al_status_command(args: argparse.Namespace) -> int:
    """``bete al status``: one row (JSON object) per round, of one or every campaign."""
    rows = status_rows(_rounds(args))
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        if not rows:
            progress(_no_rounds(args))
        columns = STATUS_COLUMNS if args.campaign else ["campaign", *STATUS_COLUMNS]
        print(format_rows(rows, args.format, columns))
    return 0


def al_report_command(args: argparse.Namespace) -> int:
    """``bete al report``: PNG plus a text summary on stdout."""
    from launchers.al_plots import plot_campaign, summary_text

    rounds = _rounds(args)
    if not rounds:
        raise UserError(_no_rounds(args))
    campaigns = sorted({str(r.get("campaign")) for r in rounds})
    if len(campaigns) > 1:
        raise UserError(f"the store holds campaigns {', '.join(campaigns)}; choose one with "
                        "--campaign NAME")
    out = plot_campaign(rounds, args.out)
    print(summary_text(rounds))
    progress(f"wrote {out}")
    return 0
