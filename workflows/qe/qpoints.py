"""What ph.x computed at the q points themselves, independent of matdyn's interpolation.

Two checks read the ph.x outputs of a finished run (``ph.out`` of a single run and
``ph_q*/ph.out`` of a per-q fan-out): the lowest frequency at the computed q points, and
λ summed over them with their star weights (what QE's ``lambda.x`` does). When the q grid
resolves the phonons, that sum agrees with λ of the interpolated α²F (fcc Al, 4³ q: 0.4536
against 0.4531); spurious soft modes between the q points inflate the α²F value instead
(bcc Nb, 4³ q: 1.74 against 1.18).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workflows.qe.parsers import PhQPoint, parse_ph_output


def computed_q_points(workdir: Path) -> list[PhQPoint] | None:
    """The irreducible q points of the run, each once; None unless every one is there.

    A run resumed at ``start_q`` rewrites ``ph.out`` without the earlier q points, and an
    unreadable output says nothing: both give None, never an error (the checks are
    informative, never a reason to lose a document).
    """
    found: dict[tuple[float, ...], PhQPoint] = {}
    needed = 0
    for path in [workdir / "ph.out", *sorted(workdir.glob("ph_q*/ph.out"))]:
        if not path.is_file():
            continue
        try:
            ph = parse_ph_output(path)
        except (OSError, ValueError, AttributeError):
            return None
        needed = max(needed, ph.n_irreducible_q)
        for q in ph.q_points:
            found.setdefault(tuple(np.round(q.q_cart_2pi_alat, 6)), q)
    return list(found.values()) if needed and len(found) >= needed else None


def q_point_min_frequency_meV(points: list[PhQPoint] | None) -> float | None:
    """Lowest ph.x frequency at the computed q points, meV (Γ's three acoustic modes left out).

    ``points`` is :func:`computed_q_points` of the run (None: no claim).
    """
    lowest = None
    for q in points or []:
        freqs = np.sort(q.frequencies_meV)
        if np.allclose(q.q_cart_2pi_alat, 0.0):
            freqs = freqs[3:]
        if freqs.size and (lowest is None or freqs[0] < lowest):
            lowest = float(freqs[0])
    return lowest if points else None


def q_point_lambdas(points: list[PhQPoint] | None, q_grid: list[int]) -> dict[float, float]:
    """λ(σ) = Σ_q (star_q / N_q) Σ_ν λ_qν over the computed q points, per broadening σ (Ry).

    ``points`` is :func:`computed_q_points` of the run. Empty when a q point is missing, a
    star was not printed, the stars do not add up to the grid, or the run had no
    electron-phonon part; a σ is left out where ph.x printed asterisks for a λ_qν.
    """
    n_grid = int(np.prod(q_grid))
    if not points or any(q.star_size is None or not q.elph for q in points):
        return {}
    if sum(q.star_size for q in points) != n_grid:  # type: ignore[misc]
        return {}
    sums: dict[float, list[float]] = {}
    for q in points:
        for sec in q.elph:
            weighted = q.star_size * float(np.sum(sec.lambdas))  # type: ignore[operator]
            sums.setdefault(round(sec.sigma_Ry, 6), []).append(weighted)
    return {s: sum(v) / n_grid for s, v in sums.items()
            if len(v) == len(points) and np.isfinite(sum(v))}
