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

``fit_mlps`` trains many small classifiers at once (one per optimizer and seed), each
exactly as ``fit`` would: what a learning-rate sweep over several seeds needs.
"""

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from course_utils import _validate

__all__ = ["evaluate", "fit", "fit_mlps"]


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


def fit_mlps(
    sizes,
    optimizers,
    train_data,
    *,
    seeds,
    epochs: int,
    batch_size: int,
    eval_data=None,
    schedule=None,
) -> dict[str, dict]:
    """Train one MLP classifier per (optimizer, seed), all at once; return their histories.

    Each pair is trained exactly as ``fit`` would train it (to rounding), with the mean
    cross-entropy as the loss:

        torch.manual_seed(seed)
        model = Sequential(Linear(sizes[0], sizes[1]), ReLU(), ..., Linear(sizes[-2], sizes[-1]))
        fit(model, cross_entropy, make(model.parameters()), train_data, epochs=epochs,
            batch_size=batch_size, generator=torch.Generator().manual_seed(seed))

    but the models' weights are stacked along a first dimension and evaluated with batched
    matrix products (``torch.baddbmm``), one forward and one backward pass per step for all
    models together: a sweep of a hundred small networks costs about as much as a few
    trained one after the other. For one seed every optimizer starts from the same weights
    and sees the same batches (a fair comparison); another seed changes both. The global
    random state is left as it was.

    sizes: layer widths (in, hidden, ..., out), ReLU between the linear layers.
    optimizers: {name: make(params) -> optimizer}. ``params`` are the seeds' weights of
        one layer stacked in one tensor, (S, in, out) and (S, 1, out), so the optimizer must
        update every entry on its own, as all of ``course_utils.optim``'s classes do.
    train_data: (x, y) with x of shape (n, sizes[0]) and y int64 class indices (n,).
    seeds: the seeds, S of them.
    eval_data: {name: (x, y)} evaluated after every epoch: history keys ``<name>_loss``
        and ``<name>_acc``.
    schedule: None, or a function (epoch, base_lr) -> lr setting every param group's rate
        at the start of each epoch from the rate it had at the start of training, e.g.
        ``functools.partial(schedules.cosine_annealing_lr, T_max=epochs)``.

    Returns {name: history} with tensors of shape (S, epochs): ``train_loss`` (the mean
    of the epoch's batch losses, as ``fit`` reports it) and the eval keys; and
    ``models``, the S trained networks as ``torch.nn.Sequential``.
    """
    sizes = [_validate.integer(size, "sizes[i]", low=1) for size in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must give at least an input and an output width, got {sizes}")
    _validate.integer(epochs, "epochs", low=0)
    _validate.integer(batch_size, "batch_size", low=1)
    seeds = [_validate.integer(seed, "seeds[i]") for seed in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if not optimizers:
        raise ValueError("optimizers must hold at least one {name: make(params)} entry")
    if schedule is not None and not callable(schedule):
        raise TypeError(
            f"schedule must be None or a function (epoch, base_lr) -> lr, got {schedule!r}"
        )
    x_train, y_train = train_data
    eval_data = eval_data or {}
    n, n_seeds, names = len(y_train), len(seeds), list(optimizers)

    with torch.random.fork_rng(devices=[]):
        initial = []
        for seed in seeds:
            torch.manual_seed(seed)
            initial.append(_mlp(sizes).to(x_train.device))
    layers = [module for module in initial[0] if isinstance(module, torch.nn.Linear)]
    weights, opts, base_lrs = {}, {}, {}
    for name, make in optimizers.items():
        tensors = []
        for i in range(len(layers)):  # W (S, in, out) and b (S, 1, out), as leaf tensors
            linears = [[m for m in model if isinstance(m, torch.nn.Linear)][i] for model in initial]
            tensors.append(torch.stack([m.weight.detach().T for m in linears]).requires_grad_())
            tensors.append(torch.stack([m.bias.detach()[None] for m in linears]).requires_grad_())
        weights[name], opts[name] = tensors, make(tensors)
        base_lrs[name] = [group["lr"] for group in opts[name].param_groups]

    def all_weights():  # model r = (optimizer r // S, seed r % S)
        return [torch.cat([weights[name][j] for name in names]) for j in range(2 * len(layers))]

    history = {name: {"train_loss": torch.zeros(n_seeds, epochs)} for name in names}
    for name in names:
        for key in eval_data:
            history[name] |= {f"{key}_loss": torch.zeros(n_seeds, epochs)}
            history[name] |= {f"{key}_acc": torch.zeros(n_seeds, epochs)}
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    for epoch in range(epochs):
        if schedule is not None:
            for name in names:
                for group, base_lr in zip(opts[name].param_groups, base_lrs[name], strict=True):
                    group["lr"] = schedule(epoch, base_lr)
        orders = torch.stack([torch.randperm(n, generator=g) for g in generators])  # (S, n)
        totals = torch.zeros(len(names) * n_seeds)
        for start in range(0, n, batch_size):
            batch = orders[:, start : start + batch_size]  # (S, B): each seed its own batch
            x = x_train[batch].repeat(len(names), 1, 1)  # (R, B, in), R = models
            y = y_train[batch].repeat(len(names), 1)
            per_model = _mean_cross_entropy(_stacked_forward(all_weights(), x), y)  # (R,)
            for opt in opts.values():
                opt.zero_grad()
            per_model.sum().backward()  # model r's gradient is that of its own mean loss
            for opt in opts.values():
                opt.step()
            totals += per_model.detach().cpu() * batch.shape[1]
        with torch.no_grad():
            evaluated = {}
            for key, (x_eval, y_eval) in eval_data.items():
                x = x_eval.expand(len(names) * n_seeds, *x_eval.shape)
                logits = _stacked_forward(all_weights(), x)
                y = y_eval.expand(len(logits), -1)
                correct = (logits.argmax(dim=-1) == y).double().mean(dim=1)
                evaluated[key] = (_mean_cross_entropy(logits, y).cpu(), correct.float().cpu())
        for k, name in enumerate(names):
            rows = slice(k * n_seeds, (k + 1) * n_seeds)
            history[name]["train_loss"][:, epoch] = totals[rows] / n
            for key, (loss, acc) in evaluated.items():
                history[name][f"{key}_loss"][:, epoch] = loss[rows]
                history[name][f"{key}_acc"][:, epoch] = acc[rows]

    for name in names:
        history[name]["models"] = [_unstack(sizes, weights[name], s) for s in range(n_seeds)]
    return history


def _mlp(sizes) -> torch.nn.Sequential:
    """Linear layers of the given widths with a ReLU between consecutive ones."""
    modules = []
    for i in range(len(sizes) - 1):
        modules.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


def _stacked_forward(weights, x: torch.Tensor) -> torch.Tensor:
    """Logits of R stacked MLPs: weights [W (R, in, out), b (R, 1, out), ...], x (R, B, in)."""
    h = x
    for j in range(0, len(weights), 2):
        h = torch.baddbmm(weights[j + 1], h, weights[j])  # b + h @ W, for each model
        if j + 2 < len(weights):
            h = torch.relu(h)
    return h


def _mean_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each model's mean cross-entropy: logits (R, B, C), y (R, B) -> (R,)."""
    per_example = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    return per_example.view(y.shape).mean(dim=1)


def _unstack(sizes, tensors, s: int) -> torch.nn.Sequential:
    """Seed s's weights as a torch.nn.Sequential (the layout of ``_mlp``)."""
    with torch.random.fork_rng(devices=[]):
        model = _mlp(sizes).to(tensors[0].device)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, linear in enumerate(linears):
            linear.weight.copy_(tensors[2 * i][s].T)
            linear.bias.copy_(tensors[2 * i + 1][s, 0])
    return model
