"""Unit constants used across the project (one place, with sources).

Frequencies are kept in meV internally.  Sources: CODATA 2018 via the values
quoted in the project's design (1 Ry = 13605.693 meV, 1 cm^-1 = 0.123984 meV,
1 meV = 11.604518 K).
"""

RY_TO_MEV = 13605.693122994
"""1 Rydberg in meV (CODATA 2018)."""

CM1_TO_MEV = 0.12398419843320026
"""1 cm^-1 in meV (h c)."""

MEV_TO_K = 11.604518
"""1 meV in kelvin (1/k_B, the value the fast-v1 records use)."""

THZ_TO_MEV = 4.135667696923859
"""1 THz in meV (h)."""

RY_TO_EV = RY_TO_MEV / 1000.0
BOHR_TO_ANGSTROM = 0.529177210903
KBAR_TO_GPA = 0.1
