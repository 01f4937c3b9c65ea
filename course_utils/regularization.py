r"""Regularization for lecture 05 (and the noise tricks lectures 07 and 08 reuse).

Penalties and the updates they lead to:

* ``l2_penalty``, ``l2_penalty_grad``, ``l1_penalty``: sum of squares / absolute values of
  the *weights*. **The bias rule**: a parameter tensor with fewer than 2 dimensions
  (a bias, the scale and shift of a normalization layer, a scalar) is not penalized;
  weights of linear and convolutional layers have 2 or more dimensions. ``is_penalized``
  states the rule and ``weight_decay_groups`` applies it to an optimizer's param groups.
* ``sgd_weight_decay_step``: one step of SGD with momentum and weight decay, as
  ``torch.optim.SGD(weight_decay=...)`` takes it.
* ``l1_proximal_step``: a gradient step followed by soft-thresholding, which sets weights
  exactly to zero.

Early stopping (callbacks for ``course_utils.training.fit``):

* ``EarlyStopping``: the error-change criterion with patience; keeps and restores the
  best weights. ``early_stopping_epoch`` applies it to a finished validation curve.
* ``WeightChangeStopping``: the weight-change criterion, max_i |w_i(t) - w_i(t - k)| < tol.

Ensembles: ``ensemble_average`` (the mean of the members' probabilities) and
``ensemble_mse`` (the squared error of an average of n members with correlated errors).

Noise and augmentation:

* ``mixup``: convex combinations of pairs of examples and of their targets (Zhang et al., 2018).
* ``add_gradient_noise_``: annealed Gaussian gradient noise (Neelakantan et al., 2015).
* ``disturb_labels``: DisturbLabel label noise (Xie et al., 2016).
"""

import copy
import math
from collections import deque

import torch

from course_utils import _validate, optim

__all__ = [
    "EarlyStopping",
    "WeightChangeStopping",
    "add_gradient_noise_",
    "disturb_labels",
    "early_stopping_epoch",
    "ensemble_average",
    "ensemble_mse",
    "is_penalized",
    "l1_penalty",
    "l1_proximal_step",
    "l2_penalty",
    "l2_penalty_grad",
    "mixup",
    "sgd_weight_decay_step",
    "weight_decay_groups",
]


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")


def _tensor_list(params, name: str = "params") -> list[torch.Tensor]:
    """A tensor, or an iterable of tensors (``model.parameters()``, a list, a tuple), as a list."""
    if isinstance(params, torch.nn.Module):
        raise TypeError(f"{name} must be tensors: pass model.parameters(), not the model")
    if isinstance(params, torch.Tensor):
        return [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            f"{name} must be a tensor or an iterable of tensors, got {type(params).__name__}"
        ) from None
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(p).__name__}")
        if not p.is_floating_point():
            raise TypeError(f"{name}[{i}] must be a floating-point tensor, got dtype {p.dtype}")
    return params


# --- penalties ------------------------------------------------------------------------


def is_penalized(param: torch.Tensor) -> bool:
    """The bias rule: weights (2 or more dimensions) are penalized; biases, normalization
    scales and shifts (1 dimension) and scalars (0 dimensions) are not.

    A bias only shifts a unit's input; shrinking it towards 0 does not make the function
    smoother, it just moves the unit's threshold. (Deck 002: "biases terms are not
    regularized".)
    """
    return param.dim() >= 2


def _zero(params: list[torch.Tensor]) -> torch.Tensor:
    if params:
        return torch.zeros((), dtype=params[0].dtype, device=params[0].device)
    return torch.zeros(())


def l2_penalty(params) -> torch.Tensor:
    r"""The squared L2 norm of the weights:

        Omega(theta) = sum over weight tensors W of ||W||_F^2 = sum_ij W_ij^2

    Tensors with fewer than 2 dimensions (biases, ...) are excluded (``is_penalized``).
    Add ``lam * l2_penalty(params)`` to the loss: its gradient is 2 * lam * W. PyTorch's
    ``weight_decay=wd`` adds wd * W to the gradient, i.e. the penalty (wd / 2) * Omega.
    params: a tensor or an iterable of tensors. Returns a 0-d tensor (differentiable) of
    the parameters' dtype; 0 when nothing is penalized.
    """
    params = _tensor_list(params)
    total = _zero(params)
    for p in params:
        if is_penalized(p):
            total = total + (p**2).sum()
    return total


def l2_penalty_grad(params) -> tuple[torch.Tensor, ...]:
    r"""The gradient of ``l2_penalty`` with respect to each tensor, written out:

        d Omega / d W = 2 W   for weights,     0 for biases and other excluded tensors

    Returns a tuple with one tensor per parameter, each shaped like it.
    """
    params = _tensor_list(params)
    return tuple(2 * p.detach() if is_penalized(p) else torch.zeros_like(p) for p in params)


def l1_penalty(params) -> torch.Tensor:
    r"""The L1 norm of the weights:

        Omega_1(theta) = sum over weight tensors W of sum_ij |W_ij|

    Same bias rule and return value as ``l2_penalty``. Its (sub)gradient is sign(W): a
    pull of constant size towards 0, however small the weight.
    """
    params = _tensor_list(params)
    total = _zero(params)
    for p in params:
        if is_penalized(p):
            total = total + p.abs().sum()
    return total


def weight_decay_groups(params, weight_decay: float) -> list[dict]:
    """Param groups for a torch optimizer that decay the weights and not the biases.

        optimizer = torch.optim.SGD(weight_decay_groups(model.parameters(), 1e-3), lr=0.1)

    Returns ``[{"params": weights, "weight_decay": weight_decay},
    {"params": the rest, "weight_decay": 0.0}]`` (empty groups left out). With plain
    SGD this is the same as adding ``weight_decay / 2 * l2_penalty(params)`` to the loss.
    """
    weight_decay = _validate.number(weight_decay, "weight_decay", low=0.0)
    params = _tensor_list(params)
    decayed = [p for p in params if is_penalized(p)]
    rest = [p for p in params if not is_penalized(p)]
    groups = [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def sgd_weight_decay_step(param, grad, velocity, lr, momentum, weight_decay):
    r"""One step of SGD with momentum on the loss L(theta) + (weight_decay / 2) ||theta||^2.

        g'      = g + weight_decay * theta            (the penalty's gradient joins the loss's)
        v       = momentum * v + g'
        theta   = theta - lr * v

    With momentum 0: theta <- (1 - lr * weight_decay) * theta - lr * g, the weights
    shrink by a constant factor each step: weight *decay*. This is what
    ``torch.optim.SGD(lr=lr, momentum=momentum, weight_decay=weight_decay)`` does
    (velocity = 0 before the first step). Returns (new param, new velocity), new tensors.
    """
    _validate.tensor(param, "param", floating=True)
    _validate.same_shape(param, grad, "param", "grad")
    _validate.same_shape(param, velocity, "param", "velocity")
    _validate.number(weight_decay, "weight_decay", low=0.0)
    return optim.sgd_step(param, grad + weight_decay * param, velocity, lr, momentum)


def l1_proximal_step(param, grad, lr, l1):
    r"""A proximal gradient step for the loss L(theta) + l1 * ||theta||_1 (ISTA).

        v     = theta - lr * g                              (a gradient step on L alone)
        theta = argmin_w  ||w - v||^2 / (2 lr) + l1 ||w||_1
              = sign(v) * max(|v| - lr * l1, 0)             (soft-thresholding)

    Every coordinate with |v| <= lr * l1 becomes exactly 0; the others move towards 0 by
    lr * l1. A plain subgradient step, theta - lr * (g + l1 * sign(theta)), jumps across 0
    instead and almost never lands on it. Returns a new tensor.
    """
    _validate.tensor(param, "param", floating=True)
    _validate.same_shape(param, grad, "param", "grad")
    _validate.number(lr, "lr", low=0.0)
    _validate.number(l1, "l1", low=0.0)
    v = param - lr * grad
    return v.sign() * (v.abs() - lr * l1).clamp(min=0)


# --- early stopping -------------------------------------------------------------------


class EarlyStopping:
    r"""Stop when the monitored value has not improved for ``patience`` epochs in a row.

    The error-change criterion: after each epoch t with value e_t (the validation loss,
    say),

        improved  <=>  e_t < best - min_delta        (mode "min"; "max": e_t > best + min_delta)
        improved:  best = e_t, best_epoch = t, wait = 0, remember the weights
        otherwise: wait = wait + 1; stop once wait == patience

    A tie is not an improvement, nor is NaN. The first epoch always improves on the
    initial best (+inf for "min", -inf for "max").

    As a ``training.fit`` callback it reads ``history[monitor][-1]``, copies the model's
    weights (``state_dict``) whenever they are the best so far and, when it stops, loads
    them back (``restore_best_weights=True``). If training ends without the rule firing,
    call ``restore(model)`` to get the best weights.

        stopper = EarlyStopping(patience=10)
        fit(model, ..., val_data=val, callbacks=[stopper])
        stopper.restore(model)       # a no-op if the callback already restored them

    ``update(value, epoch)`` applies the rule alone (no model), as ``early_stopping_epoch``
    does. Attributes: best, best_epoch, wait, stopped_epoch (None until it fires), best_state.
    """

    def __init__(
        self,
        patience: int,
        min_delta: float = 0.0,
        *,
        monitor: str = "val_loss",
        mode: str = "min",
        restore_best_weights: bool = True,
    ):
        self.patience = _validate.integer(patience, "patience", low=1)
        self.min_delta = _validate.number(min_delta, "min_delta", low=0.0)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.restore_best_weights = restore_best_weights
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch, self.wait, self.stopped_epoch = None, 0, None
        self.best_state = None
        self._epoch = -1

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than min_delta (NaN never does)."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float, epoch: int | None = None) -> bool:
        """Record one epoch's value; True when training should stop after this epoch.

        epoch: the epoch's number; by default one more than the last (from 0).
        """
        value = float(value)
        self._epoch = self._epoch + 1 if epoch is None else epoch
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, self._epoch, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = self._epoch
            return True
        return False

    def __call__(self, epoch: int, history: dict, model: torch.nn.Module) -> bool:
        if self.monitor not in history:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which the history does not have "
                f"(it has {sorted(history)}); pass val_data to fit or choose monitor="
            )
        previous_best = self.best_epoch
        stop = self.update(history[self.monitor][-1], epoch)
        if self.best_epoch != previous_best:  # a new best: keep a copy of these weights
            self.best_state = copy.deepcopy(model.state_dict())
        if stop and self.restore_best_weights:
            self.restore(model)
        return stop

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best weights seen so far into ``model``."""
        if self.best_state is None:
            raise ValueError("restore: no weights recorded yet (the callback never ran)")
        model.load_state_dict(self.best_state)


def early_stopping_epoch(val_losses, patience: int, min_delta: float = 0.0):
    r"""Where ``EarlyStopping(patience, min_delta)`` stops on a finished validation curve.

    val_losses: 1-D tensor, the validation loss after each epoch 0, 1, ..., T - 1.
    Returns (best_epoch, stop_epoch) as 0-d int64 tensors: the epoch of the best loss
    before stopping (the weights one restores) and the last epoch trained, which is
    best_epoch + patience when the rule fires and T - 1 when it never does.
    """
    _validate.tensor(val_losses, "val_losses", floating=True, min_dim=1)
    if val_losses.dim() != 1 or len(val_losses) == 0:
        raise ValueError(
            f"val_losses must be a non-empty 1-D tensor, got {tuple(val_losses.shape)}"
        )
    stopper = EarlyStopping(patience, min_delta)
    stop_epoch = len(val_losses) - 1
    for epoch, value in enumerate(val_losses.tolist()):
        if stopper.update(value, epoch):
            stop_epoch = epoch
            break
    if stopper.best_epoch is None:
        raise ValueError("val_losses must hold a finite loss before the rule fires")
    return torch.tensor(stopper.best_epoch), torch.tensor(stop_epoch)


class WeightChangeStopping:
    r"""Stop when no weight moved more than ``tol`` over the last ``window`` epochs.

    The weight-change criterion, after epoch t (w(t): all parameters as one vector):

        change(t) = max_i |w_i(t) - w_i(t - window)|      (relative: / max_i |w_i(t)|)
        stop      <=>  change(t) < tol

    The largest single change, not the length of the whole change vector: with many
    weights, that length can stay large while every weight has settled. A
    ``training.fit`` callback; it keeps the last ``window`` + 1 weight vectors and
    records each epoch's change in ``changes`` (None while fewer than window + 1
    epochs have passed).
    """

    def __init__(self, tol: float, window: int = 10, *, relative: bool = False):
        self.tol = _validate.number(tol, "tol", low=0.0, low_open=True)
        self.window = _validate.integer(window, "window", low=1)
        self.relative = relative
        self._snapshots = deque(maxlen=window + 1)
        self.changes: list[float | None] = []
        self.stopped_epoch = None

    def __call__(self, epoch: int, history: dict, model: torch.nn.Module) -> bool:
        with torch.no_grad():
            w = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
        self._snapshots.append(w)
        if len(self._snapshots) <= self.window:
            self.changes.append(None)
            return False
        change = (w - self._snapshots[0]).abs().max().item()
        if self.relative:
            change /= max(w.abs().max().item(), 1e-12)
        self.changes.append(change)
        if change < self.tol:
            self.stopped_epoch = epoch
            return True
        return False


# --- ensembles ------------------------------------------------------------------------


def ensemble_average(logits: torch.Tensor) -> torch.Tensor:
    r"""The prediction of an ensemble of classifiers: the mean of the members' probabilities.

        p(x) = (1 / M) sum_m softmax(z_m(x))

    logits: (M, N, C), the logits of M models for N examples and C classes (any
    (M, ..., C) works). Returns (N, C) probabilities, rows summing to 1. Averaging the
    logits instead, softmax((1/M) sum_m z_m), is a different rule: the normalized
    geometric mean of the members' probabilities.
    """
    _validate.tensor(logits, "logits", floating=True, min_dim=2)
    return torch.softmax(logits, dim=-1).mean(dim=0)


def ensemble_mse(mse: float, cross: float, n: int) -> float:
    r"""The expected squared error of the average of n ensemble members.

    With errors eps_m = f_m(x) - y, v = E|eps_m|^2 (``mse``, the same for every member)
    and c = E<eps_m, eps_k> for m != k (``cross``, the same for every pair),

        E |(1/n) sum_m eps_m|^2 = (1/n^2) (n v + n (n - 1) c) = c + (v - c) / n

    Uncorrelated errors (c = 0) give v / n; identical errors (c = v) give v: averaging
    removes only the part of the error the members do not share. With unequal members,
    v and c are the averages over members and over pairs, and the formula is exact for
    the mean over all subsets of n members. Returns a float.
    """
    mse = _validate.number(mse, "mse", low=0.0)
    cross = _validate.number(cross, "cross")
    _validate.integer(n, "n", low=1)
    return cross + (mse - cross) / n


# --- noise and augmentation -------------------------------------------------------------


def _beta(alpha: float, n: int, generator) -> torch.Tensor:
    """n float64 draws from Beta(alpha, alpha), reproducible from ``generator``.

    torch's Beta distribution samples from the global random number generator only, so a
    seed is drawn from ``generator`` (torch's global one when None) and the draws are made
    inside ``torch.random.fork_rng``, on a private copy of the global generator seeded
    with it; the global state is restored afterwards.
    """
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    concentration = torch.tensor(alpha, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return torch.distributions.Beta(concentration, concentration).sample((n,))


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, *, generator=None):
    r"""mixup (Zhang et al., 2018): train on convex combinations of pairs of examples.

        lam_i ~ Beta(alpha, alpha),   j = pi(i) for a random permutation pi
        x~_i  = lam_i x_i + (1 - lam_i) x_j
        y~_i  = lam_i y_i + (1 - lam_i) y_j

    x: (N, ...) floating inputs; y: (N, ...) floating targets, one-hot rows or class
    probabilities (or soft binary targets). Each example gets its own weight lam_i (the
    paper's code draws one per minibatch; per example, each lam_i has the same Beta
    distribution and the batch is mixed more evenly). alpha > 0: small alpha puts
    most weights near 0 or 1 (mild mixing); alpha = 1 is uniform on [0, 1]. The weights
    are drawn first, then the permutation. Returns (mixed_x, mixed_y), new tensors.
    """
    _validate.tensor(x, "x", floating=True, min_dim=1)
    _validate.tensor(y, "y", floating=True, min_dim=1)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    alpha = _validate.number(alpha, "alpha", low=0.0, low_open=True)
    _check_generator(generator)
    n = len(x)
    lam = _beta(alpha, n, generator).to(dtype=x.dtype, device=x.device)
    perm = torch.randperm(n, generator=generator).to(x.device)
    lam_x = lam.view(n, *([1] * (x.dim() - 1)))
    lam_y = lam.to(y.dtype).view(n, *([1] * (y.dim() - 1)))
    return lam_x * x + (1 - lam_x) * x[perm], lam_y * y + (1 - lam_y) * y[perm]


def add_gradient_noise_(params, step: int, eta: float, gamma: float = 0.55, *, generator=None):
    r"""Add annealed Gaussian noise to every gradient, in place (Neelakantan et al., 2015).

        g_t <- g_t + N(0, sigma_t^2 I),    sigma_t^2 = eta / (1 + t)^gamma

    t = ``step`` counts from 0, so the first step has variance eta; the noise shrinks
    slowly as training goes on (the paper uses eta in {0.01, 0.3, 1.0} and gamma = 0.55).
    The variance is given in closed form: sigma_t^2 is a function of t alone, not of the
    previous step's variance. Parameters without a gradient are skipped.
    Returns sigma_t, the standard deviation used.
    """
    _validate.integer(step, "step", low=0)
    eta = _validate.number(eta, "eta", low=0.0)
    gamma = _validate.number(gamma, "gamma", low=0.0)
    _check_generator(generator)
    params = [params] if isinstance(params, torch.Tensor) else list(params)
    std = (eta / (1 + step) ** gamma) ** 0.5
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                noise = torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype)
                p.grad.add_(noise.to(p.grad.device), alpha=std)
    return std


def disturb_labels(y: torch.Tensor, num_classes: int, alpha: float, *, generator=None):
    r"""DisturbLabel (Xie et al., 2016): with probability alpha, replace a label by one drawn
    uniformly from all ``num_classes`` classes.

        y'_i = u_i ~ Uniform{0, ..., C - 1}   with probability alpha
             = y_i                             otherwise

    The drawn label can be the true one, so a label changes with probability
    alpha (C - 1) / C and stays with probability 1 - alpha + alpha / C.
    y: int64 labels of shape (N,). Returns a new tensor; y is not changed.
    """
    _validate.tensor(y, "y")
    if y.dtype != torch.int64:
        raise TypeError(f"y must hold int64 class labels, got dtype {y.dtype}")
    _validate.integer(num_classes, "num_classes", low=1)
    alpha = _validate.number(alpha, "alpha", low=0.0, high=1.0)
    _check_generator(generator)
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y must hold labels in [0, {num_classes}), got {y.min()}..{y.max()}")
    disturb = torch.rand(y.shape, generator=generator) < alpha
    random_labels = torch.randint(0, num_classes, y.shape, generator=generator)
    return torch.where(disturb.to(y.device), random_labels.to(y.device), y)
