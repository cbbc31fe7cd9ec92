import math

import pytest
import torch

from betenet_model.training import (
    EarlyStopping,
    TemperingSchedule,
    TrainConfig,
    TrainingInterrupted,
    train_model,
    weighted_mse,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_schedule(schedule, curve):
    return [schedule.update(epoch, v) for epoch, v in enumerate(curve, start=1)]


def double_descent_curve():
    """Decrease, over-fitting bump, second descent, plateau."""
    first = [10.0 - k for k in range(5)]                  # epochs 1-5: 10 .. 6
    rise = [6.5, 7.0, 8.0, 9.0]                           # 6-9: stage-1 patience runs out
    fall = [8.5, 8.0, 7.0, 5.0, 4.0, 3.5, 3.0]            # second descent
    flat = [3.1] * 10
    return first + rise + fall + flat


def test_tempering_stages_on_synthetic_curve():
    s = TemperingSchedule(patience=3, peak_window=4, patience_stage3=5)
    steps = run_schedule(s, double_descent_curve())
    stages = [st.stage for st in steps]
    # stage 1 ends when 3 epochs passed without a new minimum (epoch 8)
    assert stages[:7] == [1] * 7
    assert stages[7] == 2 and steps[7].transition
    # peak = 9.0 at epoch 9; 4 consecutive epochs below it -> stage 3 at epoch 13
    assert s.transitions == [8, 13]
    assert stages[12] == 3 and steps[12].transition
    # stage 3 best is 3.0 at epoch 16, then 5 epochs without improvement -> stop at 21
    assert s.best_epoch == 16 and s.best == 3.0
    stop = [st.stop for st in steps]
    assert stop.index(True) == 20
    assert s.done


def test_stage2_dip_and_return_resets_the_count():
    s = TemperingSchedule(patience=1, peak_window=3, patience_stage3=2)
    curve = [1.0, 2.0,            # stage 1 -> 2 at epoch 2
             5.0, 4.0, 3.0,       # peak 5, two epochs below
             5.0,                 # back to the peak: count resets
             4.0, 3.0,            # two below: not enough
             6.0,                 # new peak: reset
             5.0, 4.0, 3.0]       # three consecutive below -> stage 3 at epoch 12
    steps = run_schedule(s, curve)
    assert [st.stage for st in steps][:11] == [1] + [2] * 10
    assert s.peak == 6.0 and s.transitions == [2, 12]
    assert steps[11].stage == 3


def test_stage3_keeps_only_stage3_best():
    s = TemperingSchedule(patience=1, peak_window=1, patience_stage3=2)
    steps = run_schedule(s, [1.0, 2.0, 3.0, 2.5, 2.4, 2.6, 2.7])
    # stage-1 best (1.0) is lower but stage 3 keeps its own best (2.4 at epoch 5)
    assert s.best_epoch == 5 and s.best == 2.4
    assert [st.keep for st in steps] == [True, False, False, False, True, False, False]
    assert steps[-1].stop


def test_schedule_state_round_trip():
    a = TemperingSchedule(patience=2, peak_window=3, patience_stage3=4)
    curve = double_descent_curve()
    run_schedule(a, curve[:10])
    b = TemperingSchedule()
    b.load_state_dict(a.state_dict())
    tail_a = [a.update(e, v) for e, v in enumerate(curve[10:], 11)]
    tail_b = [b.update(e, v) for e, v in enumerate(curve[10:], 11)]
    assert tail_a == tail_b


def test_plain_early_stopping():
    es = EarlyStopping(patience=2)
    steps = run_schedule(es, [3.0, 2.0, 2.5, 2.1, 1.0])
    assert [st.stop for st in steps][:4] == [False, False, False, True]
    assert es.best_epoch == 2


def test_train_config_validation():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="cosine")
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)
    assert TrainConfig.from_dict(TrainConfig(lr=1e-3).as_dict()).lr == 1e-3


def test_weighted_mse_equals_duplicated_rows():
    pred, target = torch.rand(3, 5), torch.rand(3, 5)
    w = torch.tensor([2.0, 0.0, 1.0])
    dup = torch.stack([pred[0], pred[0], pred[2]]), torch.stack([target[0], target[0], target[2]])
    assert torch.allclose(weighted_mse(pred, target, w), weighted_mse(*dup))


# ---------------------------------------------------------------- training loop on a tiny model
class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.SiLU(),
                                       torch.nn.Linear(16, 51))

    def forward(self, x):
        return torch.relu(self.net(x))


def tiny_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 4, generator=g)
    y = torch.relu(x @ torch.randn(4, 51, generator=g)) * 0.1
    return x[:9], y[:9], x[9:], y[9:]


def fresh_model(seed=0):
    torch.manual_seed(seed)
    return Tiny()


def test_training_lowers_the_loss():
    xt, yt, xv, yv = tiny_problem()
    cfg = TrainConfig(schedule="early_stopping", patience=20, max_epochs=60, checkpoint_every=0)
    model = fresh_model()
    with torch.no_grad():
        before = float(weighted_mse(model(xt), yt))
    res = train_model(model, xt, yt, xv, yv, cfg)
    assert res.train_loss[-1] < 0.5 * before
    assert res.best_val_loss == min(res.val_loss)


def test_kill_and_resume_gives_identical_weights(tmp_path):
    xt, yt, xv, yv = tiny_problem()
    cfg = TrainConfig(patience=3, peak_window=5, patience_stage3=8, max_epochs=80,
                      checkpoint_every=7, seed=3)
    full = fresh_model()
    ref = train_model(full, xt, yt, xv, yv, cfg)

    ckpt = tmp_path / "member.ckpt.pt"

    def kill(epoch, *_):
        if epoch == 24:          # dies between checkpoints (last one at epoch 21)
            raise TrainingInterrupted("simulated kill")

    with pytest.raises(TrainingInterrupted):
        train_model(fresh_model(), xt, yt, xv, yv, cfg, checkpoint_path=ckpt, callback=kill)
    resumed_model = fresh_model(seed=99)      # weights come from the checkpoint
    res = train_model(resumed_model, xt, yt, xv, yv, cfg, checkpoint_path=ckpt)
    assert res.resumed_from == 21
    assert res.epochs == ref.epochs and res.best_epoch == ref.best_epoch
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed_model.state_dict().items(),
                              strict=True):
        scale = max(float(a.abs().max()), 1e-12)
        assert float((a - b).abs().max()) / scale <= 1e-6, k
    assert math.isclose(res.best_val_loss, ref.best_val_loss, rel_tol=1e-6)


def test_training_is_deterministic_and_capped():
    xt, yt, xv, yv = tiny_problem()
    cfg = TrainConfig(max_epochs=12, checkpoint_every=0)
    a, b = fresh_model(), fresh_model()
    ra = train_model(a, xt, yt, xv, yv, cfg)
    train_model(b, xt, yt, xv, yv, cfg)
    assert ra.epochs == 12 and ra.stopped_by == "max_epochs"
    for ta, tb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(ta, tb)
