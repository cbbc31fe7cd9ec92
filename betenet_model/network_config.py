"""Hyper-parameters of :class:`betenet_model.network.BeteNet` (torch-free).

:class:`NetworkConfig` is read and written by manifests, the command line and the data code
without loading torch; the network itself lives in :mod:`betenet_model.network`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .variants import DEFAULT_VARIANT

__all__ = ["HEADS", "NetworkConfig"]

HEADS = ("relu-mean", "anchored", "dos")
"""Output heads (:mod:`betenet_model.heads`)."""
_LATER_DEFAULTS = {"head": "relu-mean", "coupling_basis": 10, "tc_head": False}
"""Options added after the first manifests: left out of ``to_dict`` at these values."""


@dataclass
class NetworkConfig:
    """Every hyper-parameter of :class:`BeteNet` (defaults: the paper's CSO model).

    Attributes
    ----------
    input_dim : int
        Width of node features and attributes: 118 (CSO), 169 (CPD/FPD, with the site DOS).
    embed_dim : int
        Width of the shared embedding (64).
    mul : int
        Multiplicity of each hidden irrep (32 → 32×0e + 32×0o + 32×1e + 32×1o before pruning).
    lmax : int
        Highest spherical harmonic of edges and hidden features (1).
    layers : int
        Gated convolutions before the output convolution (2).
    out_dim : int
        Output scalars per crystal (51 bins of α²F).
    cutoff : float
        Radial cutoff (Å) of the smooth cutoff and of the Gaussian basis (4.0).
    num_basis : int
        Gaussian radial basis functions (10).
    radial_layers, radial_neurons : int
        Hidden layers and their width of the radial MLP (1, 100).
    num_neighbors : float
        Normaliser of the neighbour sum (divides by its square root); the reference uses 17
        (bete-net: 16.8 edges per atom with self-edges at 4 Å).
    head : str
        Output head: ``"relu-mean"`` (the paper's), ``"anchored"`` or ``"dos"`` (see the module
        docstring). Left out of :meth:`to_dict` at its default, so configurations written before
        the option existed keep their form (and digests); so are the two below.
    coupling_basis : int
        Smooth basis functions of the ``dos`` head's coupling function α²(ω).
    tc_head : bool
        A direct ln(1 + Tc) output beside the spectrum (:meth:`BeteNet.predict`).
    """

    input_dim: int = 118
    embed_dim: int = 64
    mul: int = 32
    lmax: int = 1
    layers: int = 2
    out_dim: int = 51
    cutoff: float = 4.0
    num_basis: int = 10
    radial_layers: int = 1
    radial_neurons: int = 100
    num_neighbors: float = 17.0
    head: str = "relu-mean"
    coupling_basis: int = 10
    tc_head: bool = False

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"NetworkConfig.head must be one of {HEADS}, got {self.head!r}.")
        for name in ("input_dim", "embed_dim", "mul", "out_dim", "num_basis", "radial_neurons",
                     "coupling_basis"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"NetworkConfig.{name} must be a positive integer, got {getattr(self, name)}."
                )
        if self.lmax < 0 or self.layers < 0 or self.radial_layers < 0:
            raise ValueError("NetworkConfig.lmax, layers and radial_layers must be >= 0.")
        if not (self.cutoff > 0 and self.num_neighbors > 0):
            raise ValueError("NetworkConfig.cutoff and num_neighbors must be positive.")

    def to_dict(self) -> dict:
        """Plain-JSON dict of the hyper-parameters (options added later only when not default)."""
        data = asdict(self)
        for name, default in _LATER_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        if self.head != "dos":
            data.pop("coupling_basis", None)
        return data

    @property
    def outputs(self) -> int:
        """Width of the last convolution: spectrum bins (or coupling coefficients) [+ 1 Tc]."""
        return (self.coupling_basis if self.head == "dos" else self.out_dim) + int(self.tc_head)

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"Unknown NetworkConfig keys {sorted(unknown)}; known: {sorted(known)}."
            )
        return cls(**data)

    @classmethod
    def for_variant(cls, variant: str = DEFAULT_VARIANT, node_features: str = "onehot_mass",
                    **overrides) -> NetworkConfig:
        """Config of a variant and node-feature mode with optional overrides.

        ``CSO`` 118 inputs, ``CPD``/``FPD`` 169 with ``"onehot_mass"``; 21 / 72 with
        ``"descriptors"`` (:func:`betenet_model.input_dim`).
        """
        from .features import input_dim

        return cls(input_dim=input_dim(variant, node_features), **overrides)
