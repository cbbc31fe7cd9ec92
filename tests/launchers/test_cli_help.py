"""Every command and option explains itself: descriptions, help texts, defaults, --version."""

from __future__ import annotations

import argparse

import pytest

from launchers.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("bete",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases share the parser
                    seen.add(id(sub))
                    yield from _parsers(sub, (*path, name))


def test_every_command_has_a_description_and_every_option_a_help_text():
    missing = []
    for path, parser in _parsers(build_parser()):
        if not parser.description:
            missing.append(" ".join(path) + " (description)")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help:
                continue
            missing.append(" ".join(path) + " " + "/".join(action.option_strings or
                                                           [action.dest]))
    assert missing == []


def test_help_shows_the_defaults(capsys):
    for argv, expected in ((["al", "run"], ["--rounds ROUNDS", "(default: 1)",
                                             "--campaign CAMPAIGN", "(default: default)"]),
                           (["train"], ["(default: paper)", "(default: tempered)"]),
                           (["query"], ["(default: table)"])):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for piece in expected:
            assert piece in text, (argv, piece)


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"bete {version('bete')}"


def test_fireworks_status_is_named_apart_from_al_status(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "fw-status (status)" in text and "FireWorks" in text
    parser = build_parser()
    assert parser.parse_args(["status"]).func is parser.parse_args(["fw-status"]).func


def test_phonopy_primitive_matrix_note_is_silenced(tmp_path, capsys):
    """phonopy 4's 'auto primitive matrix' note (six of them in a demo) does not reach users."""
    import warnings

    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms
    from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning

    fcc_cell = PhonopyAtoms(  # the conventional cell: 'auto' reduces it
        symbols=["Al"] * 4, cell=[[4.04, 0, 0], [0, 4.04, 0], [0, 0, 4.04]],
        scaled_positions=[[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    with pytest.warns(PrimitiveMatrixAutoDefaultWarning):  # what users saw
        Phonopy(fcc_cell, supercell_matrix=[2, 2, 2])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        main(["query", "--store", str(tmp_path / "none")])  # installs bete's filters
        capsys.readouterr()
        Phonopy(fcc_cell, supercell_matrix=[2, 2, 2])
    assert not [w for w in seen if issubclass(w.category, PrimitiveMatrixAutoDefaultWarning)]
