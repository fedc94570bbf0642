import threading

import pytest
import torch

from arfl_studio.models import TwoMoonMLP
from arfl_studio.training import (
    AttackSettings,
    EpochEvent,
    NonFiniteLossError,
    SettingError,
    StatusEvent,
    StepEvent,
    paper_method,
    train,
)

FGSM = AttackSettings(kind="fgsm", eps=0.05, clamp=None)


def _batches(n_batches=5):
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(16, 2, generator=g), (torch.rand(16, generator=g) > 0.5).float()) for _ in range(n_batches)]
    return lambda epoch: data


def test_events_report_steps_epochs_and_status():
    model = TwoMoonMLP()
    events = []
    result = train(
        model,
        torch.optim.Adam(model.parameters(), 1e-2),
        _batches(),
        paper_method("F", 0.5, attack=FGSM),
        epochs=2,
        callback=events.append,
        evaluate=lambda e: {"acc": 0.5},
    )
    assert result.status == "finished" and result.epochs_completed == 2
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert len(steps) == 10 and steps[0].steps_per_epoch == 5
    assert [e.epoch for e in epochs] == [0, 1] and epochs[0].metrics == {"acc": 0.5}
    assert {"cls_clean", "cls_adversarial", "robust_clean", "robust_adversarial", "total"} <= set(epochs[0].losses)
    assert isinstance(events[0], StatusEvent) and events[-1] == StatusEvent("finished")


def test_cancel_stops_between_steps():
    model = TwoMoonMLP()
    cancel = threading.Event()
    seen = []

    def callback(event):
        if isinstance(event, StepEvent):
            seen.append(event)
            if len(seen) == 3:
                cancel.set()

    result = train(
        model, torch.optim.SGD(model.parameters(), 0.1), _batches(), paper_method("A"), epochs=4, callback=callback, cancel=cancel
    )
    assert result.status == "cancelled"
    assert len(seen) == 3  # no step ran after the flag was set


def test_training_reduces_the_loss():
    model = TwoMoonMLP()
    result = train(model, torch.optim.Adam(model.parameters(), 3e-2), _batches(), paper_method("A"), epochs=30)
    assert result.history[-1].losses["total"] < result.history[0].losses["total"]


def test_non_finite_loss_names_epoch_and_step():
    model = TwoMoonMLP()
    data = _batches()(0)
    bad = list(data)
    bad[2] = (torch.full((16, 2), float("nan")), bad[2][1])
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 3"):
        train(model, torch.optim.SGD(model.parameters(), 0.1), lambda e: bad, paper_method("A"), epochs=1)


def test_zero_epochs_is_refused():
    model = TwoMoonMLP()
    with pytest.raises(SettingError, match="epochs must be >= 1"):
        train(model, torch.optim.SGD(model.parameters(), 0.1), _batches(), paper_method("A"), epochs=0)


def test_ensemble_with_loss_scale_matches_separate_training():
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(2, 16, 2, generator=g)
    ts = (torch.rand(2, 16, generator=g) > 0.5).float()
    method = paper_method("F", 0.5, attack=FGSM)
    ens = TwoMoonMLP(n_models=2, seeds=[1, 2])
    singles = [ens.member(0), ens.member(1)]
    train(ens, torch.optim.SGD(ens.parameters(), 0.1), lambda e: [(xs, ts)], method, epochs=3, loss_scale=2)
    for m, single in enumerate(singles):
        train(single, torch.optim.SGD(single.parameters(), 0.1), lambda e: [(xs[m], ts[m])], method, epochs=3)
        for p_ens, p_single in zip(ens.member(m).parameters(), single.parameters()):
            assert torch.allclose(p_ens, p_single, atol=1e-5)


def test_an_objective_replaces_the_method_loss():
    from arfl_studio.training import LossTerms

    model = TwoMoonMLP()
    seen = []

    def objective(m, x, t):
        seen.append(x.shape)
        loss = (m(x) ** 2).mean()
        return LossTerms(loss, {"total": loss.detach()})

    result = train(model, torch.optim.SGD(model.parameters(), 0.1), _batches(2), None, epochs=3, objective=objective)
    assert len(seen) == 6 and result.history[-1].losses["total"] < result.history[0].losses["total"]
    with pytest.raises(SettingError, match="needs a method"):
        train(model, torch.optim.SGD(model.parameters(), 0.1), _batches(2), None, epochs=1)


def test_cosine_schedule_anneals_from_lr_towards_zero_and_resumes_on_the_same_curve():
    from arfl_studio.experiments.fold_optimizer import epoch_lr

    epochs = 10
    cosine = [epoch_lr(2e-3, "cosine", e, epochs) for e in range(epochs)]
    assert cosine[0] == 2e-3 and all(a > b > 0 for a, b in zip(cosine, cosine[1:]))
    assert cosine[5] == pytest.approx(1e-3) and cosine[-1] < 0.03 * 2e-3  # the last epoch takes small steps
    assert [epoch_lr(2e-3, "constant", e, epochs) for e in range(epochs)] == [2e-3] * epochs
    # set from the epoch number alone: a fold resumed at epoch 6 continues the same curve
    assert epoch_lr(2e-3, "cosine", 6, epochs) == cosine[6]
