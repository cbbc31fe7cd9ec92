"""The ``bete`` command line.

Every module in this package that defines ``register(subparsers)`` adds its
sub-commands; ``main()`` parses and dispatches to the ``func`` a sub-command
set.  Errors the user can fix (bad input, missing programs) print one line on
stderr and exit with status 2; nothing is printed on stdout in that case.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from launchers.cli.common import UserError


def build_parser() -> argparse.ArgumentParser:
    """Parser with every sub-command module of this package registered."""
    parser = argparse.ArgumentParser(
        prog="bete",
        description="DFT-to-ML pipeline for electron-phonon superconductors (QE DFPT + BETE-NET).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "common":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bete`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning, module="jobflow")
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"bete: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bete: interrupted; rerun the same command to continue.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
