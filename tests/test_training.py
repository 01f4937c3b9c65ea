"""course_utils.training.fit and evaluate on tiny problems."""

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import data, schedules, training


def accuracy(logits, y):
    return (logits.argmax(dim=1) == y).float().mean()


def mixture_problem(seed=0):
    """A small MLP on the 2-D Gaussian mixture, initialised from ``seed``."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    return model, data.gaussian_mixture(200, seed=0), data.gaussian_mixture(100, seed=1)


def test_fit_decreases_the_loss_and_records_history():
    model, train, val = mixture_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    initial_train_loss = training.evaluate(model, F.cross_entropy, train)["loss"]
    initial_val_loss = training.evaluate(model, F.cross_entropy, val)["loss"]
    history = training.fit(
        model,
        F.cross_entropy,
        optimizer,
        train,
        epochs=15,
        batch_size=20,
        val_data=val,
        metrics={"accuracy": accuracy},
        generator=torch.Generator().manual_seed(0),
    )
    expected_keys = {"lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert set(history) == expected_keys
    assert all(len(values) == 15 for values in history.values())
    assert history["train_loss"][-1] < 0.5 * initial_train_loss
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_loss"][-1] < 0.6 * initial_val_loss
    assert history["val_accuracy"][-1] > 0.85
    # the last val entries describe the final model
    assert history["val_loss"][-1] == pytest.approx(F.cross_entropy(model(val[0]), val[1]).item())
    assert history["val_accuracy"][-1] == pytest.approx(accuracy(model(val[0]), val[1]).item())


def run(seed, generator_seed):
    model, train, val = mixture_problem(seed)
    history = training.fit(
        model,
        F.cross_entropy,
        torch.optim.Adam(model.parameters(), lr=0.01),
        train,
        epochs=5,
        batch_size=32,
        val_data=val,
        generator=torch.Generator().manual_seed(generator_seed),
    )
    return history, model


def test_fit_is_deterministic_given_the_generator():
    torch.manual_seed(123)  # the global RNG must not matter
    history_a, model_a = run(seed=0, generator_seed=42)
    torch.manual_seed(456)
    history_b, model_b = run(seed=0, generator_seed=42)
    assert history_a == history_b
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)
    history_c, _ = run(seed=0, generator_seed=43)
    assert history_c["train_loss"] != history_a["train_loss"]


class Recorder(nn.Module):
    """y_hat = w * x; remembers which examples (x = example index) each training batch held."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.batches = []

    def forward(self, x):
        if self.training:
            self.batches.append(x.long().tolist())
        return self.w * x


def test_each_epoch_is_a_permutation_in_ceil_n_over_b_batches():
    n, batch_size, epochs = 10, 4, 3
    model = Recorder()
    x = torch.arange(n, dtype=torch.float32)
    training.fit(
        model,
        F.mse_loss,
        torch.optim.SGD(model.parameters(), lr=0.0),
        (x, torch.zeros(n)),
        epochs=epochs,
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(5),
    )
    assert [len(b) for b in model.batches] == [4, 4, 2] * epochs
    reference = torch.Generator().manual_seed(5)
    epoch_orders = [
        [i for batch in model.batches[3 * epoch : 3 * epoch + 3] for i in batch]
        for epoch in range(epochs)
    ]
    for order in epoch_orders:
        assert order == torch.randperm(n, generator=reference).tolist()
    assert epoch_orders[0] != epoch_orders[1]


def test_train_loss_is_the_mean_over_examples_not_batches():
    """With lr = 0 the model never changes, so the epoch's train loss is the full-data loss."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = torch.randn(10, 3), torch.randn(10, 1)
    history = training.fit(
        model,
        F.mse_loss,
        torch.optim.SGD(model.parameters(), lr=0.0),
        (x, y),
        epochs=2,
        batch_size=4,
    )
    full = F.mse_loss(model(x), y).item()
    assert history["train_loss"] == pytest.approx([full, full], rel=1e-6)
    assert training.evaluate(model, F.mse_loss, (x, y), batch_size=3)["loss"] == pytest.approx(full)


def tiny_regression():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    return model, (torch.randn(16, 2), torch.randn(16, 1))


def test_schedule_function_sets_the_learning_rate_each_epoch():
    model, train = tiny_regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=123.0)
    schedule = functools.partial(schedules.cosine_annealing_lr, base_lr=0.1, T_max=4)
    history = training.fit(
        model, F.mse_loss, optimizer, train, epochs=5, batch_size=8, scheduler=schedule
    )
    expected = [0.05 * (1 + math.cos(math.pi * e / 4)) for e in range(5)]
    assert history["lr"] == pytest.approx(expected)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


def test_torch_scheduler_is_stepped_once_per_epoch():
    model, train = tiny_regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    history = training.fit(
        model, F.mse_loss, optimizer, train, epochs=5, batch_size=16, scheduler=scheduler
    )
    assert history["lr"] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_reduce_on_plateau_gets_the_epoch_loss():
    model, train = tiny_regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)

    def constant_loss(prediction, y):  # never improves
        return (prediction * 0).mean() + 1.0

    history = training.fit(
        model, constant_loss, optimizer, train, epochs=4, batch_size=8, scheduler=scheduler
    )
    assert history["lr"] == [1.0, 1.0, 0.5, 0.25]


def test_callback_returning_true_stops_training():
    model, train = tiny_regression()
    calls = []

    def stop_after_epoch_2(epoch, history, model_):
        calls.append((epoch, len(history["train_loss"]), model_ is model))
        return epoch == 2

    history = training.fit(
        model,
        F.mse_loss,
        torch.optim.SGD(model.parameters(), lr=0.1),
        train,
        epochs=10,
        batch_size=4,
        callbacks=[stop_after_epoch_2, lambda epoch, history, model: None],
    )
    assert calls == [(0, 1, True), (1, 2, True), (2, 3, True)]
    assert len(history["train_loss"]) == 3


def test_progress_bar_is_silent_when_stderr_is_not_a_terminal(capsys):
    model, train = tiny_regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for progress in (True, False):
        training.fit(model, F.mse_loss, optimizer, train, epochs=3, batch_size=4, progress=progress)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_fit_rejects_bad_arguments():
    model, train = tiny_regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        training.fit(model, F.mse_loss, optimizer, train, epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="epochs"):
        training.fit(model, F.mse_loss, optimizer, train, epochs=-1, batch_size=4)


@pytest.mark.parametrize("scheduler", [0.01, "cosine", [0.1, 0.01]])
def test_fit_rejects_a_scheduler_it_cannot_use(scheduler):
    model, train = tiny_regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="scheduler must be"):
        training.fit(
            model, F.mse_loss, optimizer, train, epochs=1, batch_size=4, scheduler=scheduler
        )


def test_fit_rejects_a_schedule_function_that_returns_no_learning_rate():
    model, train = tiny_regression()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for schedule in (lambda epoch: None, lambda epoch: -0.1, lambda epoch: "fast"):
        with pytest.raises(ValueError, match=r"scheduler\(0\) must return a learning rate"):
            training.fit(
                model, F.mse_loss, optimizer, train, epochs=1, batch_size=4, scheduler=schedule
            )


# --- fit_mlps: many small classifiers at once --------------------------------------------


def _digits_subset(n=300):
    d = data.digits(seed=0)
    return (d.train.x[:n], d.train.y[:n]), (d.val.x[:100], d.val.y[:100])


def test_fit_mlps_trains_each_model_exactly_as_fit_would():
    from course_utils import losses, optim

    train, val = _digits_subset()
    makers = {
        "sgd": lambda p: optim.SGD(p, lr=0.2),
        "momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
        "adam": lambda p: optim.AdamW(p, lr=0.01),
    }
    cosine = functools.partial(schedules.cosine_annealing_lr, T_max=4)
    runs = training.fit_mlps(
        (64, 16, 10),
        makers,
        train,
        seeds=[3, 5],
        epochs=4,
        batch_size=64,
        eval_data={"val": val},
        schedule=cosine,
    )
    for name, make in makers.items():
        for s, seed in enumerate([3, 5]):
            torch.manual_seed(seed)
            model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
            opt = make(model.parameters())
            base_lr = opt.param_groups[0]["lr"]
            history = training.fit(
                model,
                losses.cross_entropy,
                opt,
                train,
                epochs=4,
                batch_size=64,
                val_data=val,
                metrics={"acc": losses.accuracy},
                scheduler=lambda epoch, base_lr=base_lr: cosine(epoch, base_lr),
                generator=torch.Generator().manual_seed(seed),
                progress=False,
            )
            run = runs[name]
            torch.testing.assert_close(run["train_loss"][s], torch.tensor(history["train_loss"]))
            torch.testing.assert_close(run["val_loss"][s], torch.tensor(history["val_loss"]))
            torch.testing.assert_close(run["val_acc"][s], torch.tensor(history["val_acc"]))
            for got, want in zip(run["models"][s].parameters(), model.parameters(), strict=True):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)  # float32 rounding


def test_fit_mlps_leaves_the_global_random_state_alone_and_shares_starts_within_a_seed():
    from course_utils import optim

    train, _ = _digits_subset(100)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    runs = training.fit_mlps(
        (64, 8, 10),
        {"a": lambda p: optim.SGD(p, lr=0.0), "b": lambda p: optim.SGD(p, lr=0.0)},
        train,
        seeds=[0, 1],
        epochs=1,
        batch_size=50,
    )
    assert torch.equal(torch.random.get_rng_state(), before)
    a, b = runs["a"]["models"], runs["b"]["models"]
    assert torch.equal(a[0][0].weight, b[0][0].weight)  # same seed: same start (lr 0 keeps it)
    assert not torch.equal(a[0][0].weight, a[1][0].weight)  # another seed: another start
    torch.manual_seed(1)
    assert torch.equal(a[1][0].weight, nn.Linear(64, 8).weight)


def test_fit_mlps_refuses_bad_arguments():
    from course_utils import optim

    train, _ = _digits_subset(50)
    sgd = {"sgd": lambda p: optim.SGD(p, lr=0.1)}
    with pytest.raises(ValueError, match="seeds"):
        training.fit_mlps((64, 10), sgd, train, seeds=[], epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="sizes"):
        training.fit_mlps((64,), sgd, train, seeds=[0], epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="optimizers"):
        training.fit_mlps((64, 10), {}, train, seeds=[0], epochs=1, batch_size=10)
    with pytest.raises(TypeError, match="schedule"):
        training.fit_mlps((64, 10), sgd, train, seeds=[0], epochs=1, batch_size=10, schedule=0.1)
