import math

import numpy as np
import pytest

from workflows.screening.acquisition import (
    acquisition_scores,
    expected_improvement,
    probability_above,
    rank,
)

# Three candidates, hand-computed below.
MEAN = np.array([6.0, 4.0, 2.0])
STD = np.array([0.5, 3.0, 6.0])


def phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def pdf(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def test_mean_ranking():
    assert rank(acquisition_scores(MEAN, STD, "mean")) == [0, 1, 2]


def test_ucb_ranking_by_hand():
    # kappa = 1: 6.5, 7.0, 8.0 ; kappa = 0.2: 6.1, 4.6, 3.2
    s = acquisition_scores(MEAN, STD, "ucb", kappa=1.0)
    assert s.tolist() == pytest.approx([6.5, 7.0, 8.0])
    assert rank(s) == [2, 1, 0]
    assert rank(acquisition_scores(MEAN, STD, "ucb", kappa=0.2)) == [0, 1, 2]


def test_pi_by_hand():
    s = acquisition_scores(MEAN, STD, "pi", threshold=5.0)
    expected = [phi(2.0), phi(-1 / 3), phi(-0.5)]     # 0.977, 0.369, 0.309
    assert s.tolist() == pytest.approx(expected)
    assert rank(s) == [0, 1, 2]
    # a higher threshold favours the broad candidate: z = (6-9)/0.5, (4-9)/3, (2-9)/6
    assert rank(acquisition_scores(MEAN, STD, "pi", threshold=9.0)) == [2, 1, 0]


def test_ei_by_hand():
    f = 7.0
    s = acquisition_scores(MEAN, STD, "ei", incumbent=f)
    expected = []
    for m, sd in zip(MEAN, STD, strict=True):
        z = (m - f) / sd
        expected.append((m - f) * phi(z) + sd * pdf(z))
    assert s.tolist() == pytest.approx(expected)
    assert rank(s) == [2, 1, 0]     # 1.25, 0.60, 0.0085
    # nothing verified yet: incumbent 0 -> roughly the mean order
    assert rank(acquisition_scores(MEAN, STD, "ei")) == [0, 1, 2]


def test_zero_sigma_limits():
    assert probability_above([6.0, 4.0, 5.0], [0, 0, 0], 5.0).tolist() == [1.0, 0.0, 0.5]
    assert expected_improvement([6.0, 4.0], [0, 0], 5.0).tolist() == [1.0, 0.0]


def test_diversity_cap_and_ties():
    scores = [9.0, 8.0, 7.0, 7.0, 1.0]
    groups = ["Al", "Al", "Cu", "Al", "Nb"]
    assert rank(scores, groups=groups, max_per_group=1) == [0, 2, 4]
    assert rank(scores, groups=groups, max_per_group=2) == [0, 1, 2, 4]
    # ties broken by the higher mean
    assert rank([1.0, 1.0], mean=[0.0, 2.0]) == [1, 0]


def test_errors():
    with pytest.raises(ValueError, match="unknown acquisition"):
        acquisition_scores(MEAN, STD, "thompson")
    with pytest.raises(ValueError, match="shape"):
        acquisition_scores(MEAN, STD[:2])
    with pytest.raises(ValueError, match=">= 0"):
        acquisition_scores(MEAN, -STD)


def test_every_registered_acquisition_scores_and_the_cli_offers_it():
    from launchers.cli import build_parser
    from workflows.screening.acquisition import ACQUISITIONS

    mean, std = np.array([1.0, 6.0, 3.0]), np.array([0.5, 0.0, 2.0])
    for name in ACQUISITIONS:
        scores = acquisition_scores(mean, std, name, incumbent=2.0)
        assert scores.shape == (3,) and np.all(np.isfinite(scores)), name
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    option = next(a for a in sub.choices["screen"]._actions if a.dest == "acquisition")
    assert tuple(option.choices) == tuple(ACQUISITIONS)
