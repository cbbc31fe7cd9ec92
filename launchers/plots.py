"""Figures the command line writes (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from stores.constants import DEFAULT_REFERENCE_SIGMA_RY
from workflows.common.physics import cumulative_lambda


def plot_a2f(doc: dict[str, Any], out: str | Path) -> Path:
    """α²F(ω) with λ(ω) at the reference broadening, and λ against σ, for one task document."""
    spectra = doc.get("a2f_spectra") or []
    if not spectra:
        raise ValueError(
            f"{doc.get('formula')}: the document has no α²F spectra "
            f"(status {doc.get('status')}); only completed runs can be plotted"
        )
    ref = doc.get("reference_sigma_Ry")
    ref = DEFAULT_REFERENCE_SIGMA_RY if ref is None else ref
    spec = min(spectra, key=lambda s: abs(s["sigma_Ry"] - ref))
    w, a2f = spec["frequencies_meV"], spec["a2f"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
    ax.plot(w, a2f, color="C0", label=f"α²F(ω), σ = {spec['sigma_Ry']:.3f} Ry")
    ax.set_xlabel("ω (meV)")
    ax.set_ylabel("α²F(ω)")
    axl = ax.twinx()
    axl.plot(w, cumulative_lambda(w, a2f), color="C3", label="λ(ω)")
    axl.set_ylabel("λ(ω)", color="C3")
    ax.set_title(
        f"{doc.get('formula')} ({doc.get('preset')}): λ = {doc.get('lambda_', 0):.3f}, "
        f"Tc(AD) = {doc.get('tc_allen_dynes_K', 0):.2f} K"
    )
    ax.legend(loc="upper left")
    broad = doc.get("broadenings") or []
    ax2.plot([b["sigma_Ry"] for b in broad], [b["lambda_"] for b in broad], "o-", label="α²F")
    if any(b.get("qe_lambda") is not None for b in broad):
        ax2.plot([b["sigma_Ry"] for b in broad], [b.get("qe_lambda") for b in broad], "x--",
                 label="QE lambda file")
    if any(b.get("lambda_q_sum") is not None for b in broad):
        ax2.plot([b["sigma_Ry"] for b in broad], [b.get("lambda_q_sum") for b in broad], "s:",
                 label="sum over computed q")
    if ref is not None:
        ax2.axvline(ref, color="grey", lw=0.8)
    ax2.set_xlabel("σ (Ry)")
    ax2.set_ylabel("λ")
    ax2.legend()
    return save_figure(fig, out, dpi=120)


def plot_phonons(mlip: dict[str, Any], dfpt: dict[str, Any] | None, out: str | Path) -> Path:
    """MLIP phonon DOS (total and per site) and, beside it, the DFPT DOS of the same cell.

    Parameters
    ----------
    mlip
        An MLIP phonon document (``bete phonons``).
    dfpt
        An electron-phonon task document of the same structure with its ``phdos`` blob, or None.
    out
        PNG path.
    """
    panels = 2 if dfpt and dfpt.get("phdos") else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), sharex=True, sharey=True,
                             squeeze=False)
    species = [site["species"][0]["element"] for site in mlip["structure"]["sites"]]

    def draw(ax: Any, w: Any, total: Any, sites: Any, title: str) -> None:
        ax.plot(w, total, color="k", lw=1.2, label="total")
        for i, row in enumerate(sites):
            ax.plot(w, row, lw=0.8, label=f"site {i} ({species[i]})")
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlabel("ω (meV)")
        ax.set_title(title, fontsize=9)

    draw(axes[0][0], mlip["frequencies_meV"], mlip["total_dos"], mlip["site_dos"],
         f"{mlip['formula']}, {mlip['potential']} {mlip['potential_version']}: lowest "
         f"{mlip['min_frequency_meV']:.2f} meV, log-avg {mlip['mean_log_frequency_meV']:.2f} meV")
    axes[0][0].set_ylabel("phonon DOS (states/cm⁻¹)")
    if panels == 2 and dfpt is not None:
        ph = dfpt["phdos"]
        draw(axes[0][1], ph["frequencies_meV"], ph["total"], ph["site_dos"],
             f"DFPT ({dfpt.get('preset')}): lowest {dfpt.get('min_frequency_meV', 0):.2f} meV")
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, out, dpi=120)


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Lay out, write ``fig`` as PNG (parent folders created) and close it."""
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
