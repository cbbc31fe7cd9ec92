"""Phonons from universal machine-learned interatomic potentials (atomate2 + phonopy).

- :mod:`.potentials`: the registry of potentials (SevenNet-0, CHGNet);
- :mod:`.flows`: :class:`~.flows.MLIPPhononMaker`, atomate2's force-field phonon flow for
  screening;
- :mod:`.phonons`: :func:`~.phonons.mlip_phonon_document`, computed once and reused from the
  store (the public entry point).

Nothing is imported here, so that reading the registry does not load atomate2 or torch.
"""
