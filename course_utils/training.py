"""A small, readable training loop: ``fit`` for minibatch training, ``evaluate`` for a data set.

One epoch of ``fit`` is::

    set the learning rate (if the scheduler is a function of the epoch)
    for each minibatch of a fresh random permutation of the training set:
        logits = model(x);  loss = loss_fn(logits, y)
        optimizer.zero_grad();  loss.backward();  optimizer.step()
    evaluate on the validation set (if given)
    step the torch LR scheduler (if one was given)
    call the callbacks; stop if any returns True

The loss function is an argument (e.g. ``course_utils.losses.cross_entropy`` or
``torch.nn.functional.mse_loss``): it must return the mean loss over the batch.
"""

import torch
from tqdm.auto import tqdm

from course_utils import _validate

__all__ = ["evaluate", "fit"]


def evaluate(model, loss_fn, data, metrics=None, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss and metrics of ``model`` over ``data = (x, y)``, in eval mode, without gradients.

    Returns ``{"loss": ..., name: ...}`` with one entry per metric in ``metrics``
    (a dict name -> fn(logits, y) returning a batch mean). Each value is the
    average over all examples (batches of ``batch_size``, weighted by their size).
    The model's train/eval mode is restored afterwards.
    """
    metrics = metrics or {}
    x_all, y_all = data
    n = len(y_all)
    totals = dict.fromkeys(["loss", *metrics], 0.0)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            x, y = x_all[start : start + batch_size], y_all[start : start + batch_size]
            logits = model(x)
            totals["loss"] += float(loss_fn(logits, y)) * len(y)
            for name, fn in metrics.items():
                totals[name] += float(fn(logits, y)) * len(y)
    model.train(was_training)
    return {name: total / n for name, total in totals.items()}


def fit(
    model,
    loss_fn,
    optimizer,
    train_data,
    *,
    epochs: int,
    batch_size: int,
    val_data=None,
    scheduler=None,
    metrics=None,
    callbacks=None,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs`` epochs of minibatch steps; return the per-epoch history.

    train_data, val_data: pairs (x, y) of tensors, x of shape (n, ...) and y of
        shape (n, ...), on the model's device.
    batch_size: each epoch visits the n training examples once, in the order
        of ``torch.randperm(n, generator=generator)`` (sampling without
        replacement), in ceil(n / batch_size) batches; the last may be smaller.
    scheduler: None; a function epoch -> lr (epochs count from 0), applied to
        every param group at the start of each epoch (e.g. a
        ``functools.partial`` of a ``course_utils.schedules`` function); or a
        torch LR scheduler, stepped once at the end of each epoch
        (``ReduceLROnPlateau`` is given the epoch's val loss, or train loss
        without val data).
    metrics: dict name -> fn(logits, y) returning a batch mean, e.g. accuracy.
    callbacks: functions ``callback(epoch, history, model)`` called after each
        epoch (all of them, in order). Training stops when one returns True;
        returning None or False continues. This is how early stopping works.
    generator: the source of the batch order. With the same generator seed,
        model initialisation and data, two runs give identical results (unless
        the model itself draws random numbers, like dropout, from the global RNG).
    progress: show a progress bar over epochs (``tqdm.auto``: a widget in
        Jupyter, text on an interactive terminal, nothing when stderr is not a
        terminal, e.g. under pytest or with output redirected). False hides it.

    Returns a dict of lists with one entry per completed epoch: ``lr`` (param
    group 0's rate during the epoch), ``train_loss`` and ``train_<metric>``
    (averages over the epoch's batches, taken while the model was changing),
    and, with val_data, ``val_loss`` and ``val_<metric>`` (after the epoch, in
    eval mode; see ``evaluate``).
    """
    _validate.integer(epochs, "epochs", low=0)
    _validate.integer(batch_size, "batch_size", low=1)
    is_torch_scheduler = isinstance(
        scheduler, torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau
    )
    if scheduler is not None and not (is_torch_scheduler or callable(scheduler)):
        raise TypeError(
            "scheduler must be None, a function epoch -> lr or a torch LR scheduler, "
            f"got {type(scheduler).__name__} {scheduler!r}"
        )
    metrics = metrics or {}
    callbacks = callbacks or []
    x_train, y_train = train_data
    n = len(y_train)
    history = {"lr": [], "train_loss": [], **{f"train_{name}": [] for name in metrics}}
    if val_data is not None:
        history |= {"val_loss": [], **{f"val_{name}": [] for name in metrics}}

    bar = tqdm(range(epochs), desc="epochs", disable=None if progress else True)
    for epoch in bar:
        if scheduler is not None and not is_torch_scheduler:
            lr = scheduler(epoch)
            if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr >= 0:
                raise ValueError(f"scheduler({epoch}) must return a learning rate >= 0, got {lr!r}")
            for group in optimizer.param_groups:
                group["lr"] = lr
        history["lr"].append(optimizer.param_groups[0]["lr"])

        model.train()
        totals = dict.fromkeys(["loss", *metrics], 0.0)
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            x, y = x_train[batch], y_train[batch]
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            totals["loss"] += loss.item() * len(batch)
            for name, fn in metrics.items():
                totals[name] += float(fn(logits.detach(), y)) * len(batch)
        for name, total in totals.items():
            history[f"train_{name}"].append(total / n)

        if val_data is not None:
            for name, value in evaluate(model, loss_fn, val_data, metrics, batch_size).items():
                history[f"val_{name}"].append(value)

        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(history["val_loss" if val_data is not None else "train_loss"][-1])
        elif isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
            scheduler.step()

        bar.set_postfix({key: values[-1] for key, values in history.items() if "loss" in key})
        stop = [callback(epoch, history, model) for callback in callbacks]
        if any(stop):
            break
    return history
