"""The model variants: one registry that the CLI, training, prediction and screening read.

A variant fixes the node inputs of the network: the species block alone (``cso``) or the
species block plus a site-projected phonon DOS on the 51-bin grid, and which calculation
that DOS comes from (``site_dos``: the source name the data loaders and screening use).
Adding a variant is one entry in :data:`VARIANTS` (plus the module that provides its
site DOS, when it needs a new source).
"""

from __future__ import annotations

from dataclasses import dataclass

SITE_DOS_COARSE = "coarse"
"""Site DOS of a phonon-only DFPT run on a 2×2×2 q grid."""
SITE_DOS_FULL = "full"
"""Site DOS of the el-ph DFPT run's own q grid."""
SITE_DOS_MLIP = "mlip"
"""Site DOS of a universal potential's phonons (:mod:`workflows.ml.mlip_dos`)."""


@dataclass(frozen=True)
class Variant:
    """One model variant.

    Parameters
    ----------
    name
        Lower-case name (``--variant``, manifests, model ids).
    site_dos
        Source of the site-projected phonon DOS the node inputs carry:
        :data:`SITE_DOS_COARSE`, :data:`SITE_DOS_FULL` or :data:`SITE_DOS_MLIP`;
        None = no site DOS (structure only).
    description
        One line for ``--help`` and the docs.
    """

    name: str
    site_dos: str | None
    description: str

    @property
    def takes_site_dos(self) -> bool:
        """Whether the node inputs carry a site-projected phonon DOS block."""
        return self.site_dos is not None


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("cso", None, "crystal structure only"),
    Variant("cpd", SITE_DOS_COARSE, "+ site phonon DOS of a coarse 2x2x2 q-grid DFPT run"),
    Variant("fpd", SITE_DOS_FULL, "+ site phonon DOS of the full el-ph DFPT run"),
    Variant("mpd", SITE_DOS_MLIP, "+ site phonon DOS of SevenNet-0 MLIP phonons (computed and "
            "stored when missing)"),
)}
"""Name → :class:`Variant`, in the order ``--help`` lists them."""

DEFAULT_VARIANT = "cso"
"""The variant of a manifest that names none (and the CLI default)."""


def get_variant(name: str | None) -> Variant:
    """The registered variant ``name`` (any case; None = the default).

    Raises
    ------
    ValueError
        Unknown name; the message lists the choices.
    """
    key = DEFAULT_VARIANT if name is None else str(name).lower()
    if key not in VARIANTS:
        raise ValueError(f"unknown model variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[key]


def variants_help() -> str:
    """``cso (crystal structure only), cpd (...), ...`` for help texts."""
    return ", ".join(f"{v.name} ({v.description})" for v in VARIANTS.values())
