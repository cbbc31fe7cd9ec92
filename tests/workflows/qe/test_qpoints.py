"""λ summed over the computed q points, on real ph.x outputs (no QE needed)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import DATA
from workflows.qe.matdyn_parsers import parse_lambda_file
from workflows.qe.parsers import parse_ph_output
from workflows.qe.qpoints import computed_q_points, q_point_lambdas


def test_stars_fill_the_grid_without_inversion():
    """Zincblende AlAs has no inversion: ph.x adds the −q list, which doubles the weight."""
    ph = parse_ph_output(DATA / "qe" / "alas-zincblende" / "ph.out")
    assert [q.star_size for q in ph.q_points] == [1, 8, 4, 6, 24, 12, 3, 6]
    assert sum(q.star_size for q in ph.q_points) == 4 ** 3


def test_q_point_sum_equals_the_interpolated_lambda_when_the_grid_resolves_the_phonons():
    """fcc Al, standard preset (4³ q): two routes to λ, QE's matdyn interpolation and the
    star-weighted sum of ph.x's λ_qν, agree within 1.1 % at every broadening."""
    d = DATA / "qe" / "al-standard"
    summed = q_point_lambdas(computed_q_points(d), [4, 4, 4])
    rows = parse_lambda_file(d / "lambda").rows
    assert len(summed) == len(rows) == 10
    for row in rows:
        assert summed[round(row.sigma_Ry, 6)] == pytest.approx(row.lambda_, rel=0.011)


def test_q_point_sum_is_far_below_the_interpolated_lambda_for_standard_pb():
    d = DATA / "qe" / "pb-standard"
    summed = q_point_lambdas(computed_q_points(d), [4, 4, 4])
    assert summed[0.02] == pytest.approx(1.018, abs=0.001)
    assert parse_lambda_file(d / "lambda").rows[3].lambda_ > 1.4 * summed[0.02]


def test_no_sum_without_every_q_point_or_on_the_wrong_grid(tmp_path):
    assert q_point_lambdas(computed_q_points(tmp_path), [4, 4, 4]) == {}
    shutil.copy(DATA / "qe" / "al-standard" / "ph.out", tmp_path / "ph.out")
    points = computed_q_points(tmp_path)
    assert len(points) == 8 and q_point_lambdas(points, [2, 2, 2]) == {}  # stars: 64, not 8
    text = (tmp_path / "ph.out").read_text()
    cut = text[:text.rindex("     Calculation of q")]     # the last q point is missing
    (tmp_path / "ph.out").write_text(cut)
    assert computed_q_points(tmp_path) is None and q_point_lambdas(None, [4, 4, 4]) == {}


def test_fan_out_outputs_are_combined_once(tmp_path):
    """A per-q fan-out: each ph_q<i>/ph.out holds one q point (here all in each, deduplicated)."""
    text = (DATA / "qe" / "al-standard" / "ph.out").read_text()
    for i in (1, 2):
        (tmp_path / f"ph_q{i}").mkdir()
        (tmp_path / f"ph_q{i}" / "ph.out").write_text(text)
    assert len(computed_q_points(tmp_path)) == 8
    summed = q_point_lambdas(computed_q_points(tmp_path), [4, 4, 4])
    assert summed[0.02] == pytest.approx(0.4536, abs=1e-4)
