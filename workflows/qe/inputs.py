"""Quantum ESPRESSO input files as objects: namelists followed by cards.

One class per executable (:class:`PwInput`, :class:`PhInput`, :class:`Q2rInput`,
:class:`MatdynInput`).  Each renders with :meth:`QEInput.get_str` and parses back with
:meth:`QEInput.from_str`; ``QEInput.from_str(x.get_str()) == x`` for every object built
here.  Namelist and key names are stored in lower case (QE is case-insensitive), so
``la2F`` and ``la2f`` name the same key.

Examples
--------
>>> q2r = Q2rInput(namelists={"input": {"fildyn": "bete.dyn", "flfrc": "bete.fc"}})
>>> Q2rInput.from_str(q2r.get_str()) == q2r
True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from workflows.qe.errors import BeteInputError

__all__ = ["Card", "QEInput", "PwInput", "PhInput", "Q2rInput", "MatdynInput",
           "format_value", "parse_value"]

CARD_NAMES = (
    "ATOMIC_SPECIES", "ATOMIC_POSITIONS", "K_POINTS", "CELL_PARAMETERS", "OCCUPATIONS",
    "CONSTRAINTS", "ATOMIC_FORCES", "ADDITIONAL_K_POINTS", "SOLVENTS", "HUBBARD",
)
_ASSIGN = re.compile(
    r"(?P<key>[A-Za-z_][\w%]*(?:\(\s*\d+(?:\s*,\s*\d+)*\s*\))?)\s*=\s*"
    r"(?P<val>'[^']*'|\"[^\"]*\"|[^,\s/]+)"
)
_T = TypeVar("_T", bound="QEInput")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")


def format_value(value: Any) -> str:
    """Render a Python value as a Fortran namelist value.

    Parameters
    ----------
    value
        ``bool``, ``int``, ``float`` or ``str`` (numpy scalars are accepted).

    Returns
    -------
    str
        ``.true.``/``.false.``, an integer, a float in shortest round-trip form, or a
        quoted string.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, bool):
        return ".true." if value else ".false."
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BeteInputError(f"non-finite namelist value {value!r}; give a finite number")
        return repr(value)
    if isinstance(value, str):
        return f'"{value}"' if "'" in value else f"'{value}'"
    raise BeteInputError(
        f"cannot write {value!r} ({type(value).__name__}) into a QE namelist; "
        "use a bool, int, float or str"
    )


def parse_value(text: str) -> Any:
    """Parse one Fortran namelist value (inverse of :func:`format_value`)."""
    token = text.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    low = token.lower()
    if low in (".true.", ".t.", "t", "true"):
        return True
    if low in (".false.", ".f.", "f", "false"):
        return False
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(low.replace("d", "e"))
    raise ValueError(f"cannot parse namelist value {text!r}")


def _norm_key(key: str) -> str:
    return re.sub(r"\s+", "", key).lower()


@dataclass
class Card:
    """A QE input card: a header line ``NAME option`` and rows of whitespace-split tokens.

    ``name == ""`` is an anonymous block of trailing rows (e.g. ph.x's ``xq`` line).
    """

    name: str
    option: str | None = None
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.name.upper()
        self.rows = [tuple(str(t) for t in row) for row in self.rows]

    def get_str(self) -> str:
        """Render the card (header line, then one line per row)."""
        lines = []
        if self.name:
            lines.append(self.name + (f" {self.option}" if self.option else ""))
        lines.extend("  " + "  ".join(row) for row in self.rows)
        return "\n".join(lines)


@dataclass
class QEInput:
    """An input file of one QE executable: optional title, namelists, cards.

    Parameters
    ----------
    namelists
        Namelist name → {key: value}; keys like ``amass(1)`` are kept flat.
    cards
        Cards in the order they are written.
    title
        First line (ph.x only).
    """

    namelists: dict[str, dict[str, Any]] = field(default_factory=dict)
    cards: list[Card] = field(default_factory=list)
    title: str | None = None

    code: ClassVar[str] = ""
    namelist_order: ClassVar[tuple[str, ...]] = ()
    has_title: ClassVar[bool] = False

    def __post_init__(self) -> None:
        normalised: dict[str, dict[str, Any]] = {}
        for name, values in self.namelists.items():
            block: dict[str, Any] = {}
            for key, value in dict(values).items():
                nkey = _norm_key(key)
                if nkey in block:
                    raise BeteInputError(f"key {key!r} given twice in namelist &{name}")
                block[nkey] = value.item() if hasattr(value, "item") else value
            normalised[name.lower()] = block
        self.namelists = normalised

    # --- access -------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """Value of ``key`` from whichever namelist holds it, else ``default``."""
        nkey = _norm_key(key)
        for block in self.namelists.values():
            if nkey in block:
                return block[nkey]
        return default

    def set(self, namelist: str, key: str, value: Any) -> None:
        """Set ``key`` in ``namelist`` (created if absent); ``value=None`` removes it."""
        block = self.namelists.setdefault(namelist.lower(), {})
        if value is None:
            block.pop(_norm_key(key), None)
        else:
            block[_norm_key(key)] = value

    def card(self, name: str) -> Card | None:
        """The card called ``name`` (case-insensitive), or None."""
        for card in self.cards:
            if card.name == name.upper():
                return card
        return None

    # --- text ---------------------------------------------------------------------------
    def _ordered_namelists(self) -> list[str]:
        known = [n for n in self.namelist_order if n in self.namelists]
        return known + [n for n in self.namelists if n not in known]

    def get_str(self) -> str:
        """Render the whole input file as QE reads it."""
        lines: list[str] = []
        if self.has_title:
            lines.append(self.title or self.code)
        for name in self._ordered_namelists():
            lines.append(f"&{name.upper()}")
            lines.extend(f"  {k} = {format_value(v)}" for k, v in self.namelists[name].items())
            lines.append("/")
        lines.extend(card.get_str() for card in self.cards)
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.get_str()

    @classmethod
    def from_str(cls: type[_T], text: str) -> _T:
        """Parse an input file written by :meth:`get_str` (or by hand).

        Raises
        ------
        BeteInputError
            When a namelist is not closed or a value cannot be parsed.
        """
        lines = [_strip_comment(line) for line in text.splitlines()]
        lines = [line for line in lines if line.strip()]
        title = None
        if cls.has_title and lines and not lines[0].lstrip().startswith("&"):
            title = lines.pop(0).strip()
        namelists: dict[str, dict[str, Any]] = {}
        i = 0
        while i < len(lines) and lines[i].lstrip().startswith("&"):
            head = lines[i].strip()[1:].split()
            name = head[0].lower()
            rest = " ".join(head[1:])
            i += 1
            closed = _QUOTED.sub("", rest).endswith("/")
            body = [rest[:-1] if closed else rest]
            while not closed:
                if i >= len(lines):
                    raise BeteInputError(f"namelist &{name} is not closed with '/'")
                stripped = lines[i].strip()
                i += 1
                closed = _QUOTED.sub("", stripped).endswith("/")
                body.append(stripped[:-1] if closed else stripped)
            block: dict[str, Any] = {}
            for match in _ASSIGN.finditer("\n".join(body)):
                try:
                    block[_norm_key(match["key"])] = parse_value(match["val"])
                except ValueError as exc:
                    raise BeteInputError(f"&{name}: {exc}") from exc
            namelists[name] = block
        cards: list[Card] = []
        for line in lines[i:]:
            tokens = line.split()
            if tokens[0].upper() in CARD_NAMES:
                option = tokens[1].strip("{}()") if len(tokens) > 1 else None
                cards.append(Card(tokens[0], option))
            else:
                if not cards:
                    cards.append(Card(""))
                cards[-1].rows.append(tuple(tokens))
        return cls(namelists=namelists, cards=cards, title=title)

    def write_file(self, path: str | Path) -> Path:
        """Write :meth:`get_str` to ``path`` and return the path."""
        path = Path(path)
        path.write_text(self.get_str())
        return path

    @classmethod
    def from_file(cls: type[_T], path: str | Path) -> _T:
        """Read an input file from ``path``."""
        return cls.from_str(Path(path).read_text())

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form: code, title, namelists and cards."""
        return {
            "code": self.code,
            "title": self.title,
            "namelists": {k: dict(v) for k, v in self.namelists.items()},
            "cards": [
                {"name": c.name, "option": c.option, "rows": [list(r) for r in c.rows]}
                for c in self.cards
            ],
        }


def _strip_comment(line: str) -> str:
    """Drop a ``!`` comment that is not inside quotes."""
    quote = None
    for pos, char in enumerate(line):
        if char in "'\"":
            quote = None if quote == char else (char if quote is None else quote)
        elif char == "!" and quote is None:
            return line[:pos]
    return line


class PwInput(QEInput):
    """pw.x input: &CONTROL, &SYSTEM, &ELECTRONS (+ &IONS, &CELL) and cards."""

    code = "pw"
    namelist_order = ("control", "system", "electrons", "ions", "cell")

    @property
    def k_grid(self) -> list[int] | None:
        """The automatic k grid of the K_POINTS card, or None."""
        card = self.card("K_POINTS")
        if card is None or card.option != "automatic" or not card.rows:
            return None
        return [int(x) for x in card.rows[0][:3]]


class PhInput(QEInput):
    """ph.x input: a title line, &INPUTPH, optional trailing rows."""

    code = "ph"
    namelist_order = ("inputph",)
    has_title = True


class Q2rInput(QEInput):
    """q2r.x input: &INPUT."""

    code = "q2r"
    namelist_order = ("input",)


class MatdynInput(QEInput):
    """matdyn.x input: &INPUT, optional q-point rows."""

    code = "matdyn"
    namelist_order = ("input",)
