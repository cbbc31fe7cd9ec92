"""Phonons from universal machine-learned interatomic potentials (atomate2 + phonopy).

- :mod:`.potentials`: the registry of potentials (SevenNet-0, CHGNet);
- :mod:`.flows`: :class:`MLIPPhononMaker`, atomate2's force-field phonon flow for screening;
- :mod:`.phonons`: :func:`mlip_phonon_document`, computed once and reused from the store.
"""

from workflows.mlip.flows import MLIPPhononError, MLIPPhononMaker
from workflows.mlip.phonons import check_structure, compute_mlip_phonons, mlip_phonon_document
from workflows.mlip.potentials import DEFAULT_POTENTIAL, POTENTIALS, PotentialError, get_potential

__all__ = ["DEFAULT_POTENTIAL", "POTENTIALS", "MLIPPhononError", "MLIPPhononMaker",
           "PotentialError", "check_structure", "compute_mlip_phonons", "get_potential",
           "mlip_phonon_document"]
