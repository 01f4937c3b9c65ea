r"""Optimizers for lecture 02: SGD variants, adaptive methods, Newton's method.

Two layers, as torch.optim splits ``Adam.step`` from its functional update:

* functional one-step updates (``sgd_step``, ``adam_step``, ...): one parameter tensor,
  its gradient and the optimizer's state in; the new parameter and the new state out, as
  new tensors (the inputs are not changed). The lecture 02 exercises ask for exactly
  these functions, so the exercises' references are these functions.
* ``torch.optim.Optimizer`` classes (param groups, ``zero_grad``,
  ``state_dict``/``load_state_dict`` come from the base class) whose ``step`` is a plain
  loop over the parameters: add the weight decay to the gradient, call the functional
  update, store the results.

Each docstring gives the update rule for one parameter tensor theta. Notation, as in
the notebook:

    t        step counter, starting at 1
    g_t      gradient of the loss at theta_{t-1} (plus weight_decay * theta_{t-1})
    lr       learning rate
    v_t      velocity (SGD) or running average of g_t^2 (second moment)
    m_t      running average of g_t (first moment)
    beta1, beta2, eps   averaging constants and the small number guarding divisions

All squares, square roots, products and divisions are elementwise.

``SGD``, ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adam`` and ``AdamW`` give the
same numbers as their ``torch.optim`` namesakes with ``foreach=False`` (the tests
check this step by step). ``DeltaBarDelta`` and ``newton_step`` have no torch twin.
"""

import math

import torch

from course_utils import _validate

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "DeltaBarDelta",
    "RMSprop",
    "adadelta_step",
    "adagrad_step",
    "adam_step",
    "delta_bar_delta_step",
    "momentum_max_lr",
    "momentum_rate",
    "nesterov_step",
    "newton_step",
    "rmsprop_step",
    "sgd_step",
]


def _check_betas(betas) -> tuple[float, float]:
    """Check that ``betas`` is a pair of numbers in [0, 1)."""
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    beta1 = _validate.number(betas[0], "betas[0]", low=0.0, high=1.0, high_open=True)
    beta2 = _validate.number(betas[1], "betas[1]", low=0.0, high=1.0, high_open=True)
    return beta1, beta2


def _evaluate(closure):
    """Call ``closure`` (which recomputes the loss) with gradients enabled, if given."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


# --- functional one-step updates ------------------------------------------------------
# Each takes one parameter tensor, its gradient and the optimizer's state, and returns the
# new parameter and the new state. By default they are new tensors and the inputs are left
# alone (what the exercises ask for); with ``inplace=True`` the parameter and the state
# tensors are updated in place and returned (what the classes do, saving the copies).


def _copies(inplace: bool, *tensors):
    """The tensors themselves (in place) or fresh copies of them."""
    return tensors if inplace else tuple(t.clone() for t in tensors)


def sgd_step(
    param, grad, velocity, lr, momentum=0.0, dampening=0.0, nesterov=False, *, inplace=False
):
    r"""One step of SGD with (Nesterov) momentum. Returns (param, velocity).

        v_t     = momentum * v_{t-1} + (1 - dampening) * g_t     (v_1 = g_1: velocity None)
        d_t     = g_t + momentum * v_t    if nesterov
                = v_t                     otherwise
        theta_t = theta_{t-1} - lr * d_t

    PyTorch's form: lr multiplies the velocity instead of being folded into it, and the
    first velocity is the first gradient. Plain SGD is ``velocity=None``: v = d = g.
    """
    if velocity is None:
        (param,) = _copies(inplace, param)
        velocity = grad.clone()
    else:
        param, velocity = _copies(inplace, param, velocity)
        velocity.mul_(momentum).add_(grad, alpha=1 - dampening)
    d = grad.add(velocity, alpha=momentum) if nesterov else velocity
    return param.add_(d, alpha=-lr), velocity


def nesterov_step(param, grad, velocity, lr, momentum, *, inplace=False):
    r"""One step of Nesterov momentum, PyTorch's form. Returns (param, velocity).

        v_t     = momentum * v_{t-1} + g_t
        theta_t = theta_{t-1} - lr * (g_t + momentum * v_t)

    ``sgd_step(..., nesterov=True)``: the step looks ahead along the new velocity.
    """
    return sgd_step(param, grad, velocity, lr, momentum, nesterov=True, inplace=inplace)


def adagrad_step(param, grad, sum_sq, lr, eps=1e-10, *, inplace=False):
    r"""One step of Adagrad. Returns (param, sum_sq).

    v_t     = v_{t-1} + g_t^2
    theta_t = theta_{t-1} - lr * g_t / (sqrt(v_t) + eps)
    """
    param, sum_sq = _copies(inplace, param, sum_sq)
    sum_sq.addcmul_(grad, grad)
    return param.addcdiv_(grad, sum_sq.sqrt().add_(eps), value=-lr), sum_sq


def rmsprop_step(param, grad, square_avg, lr, alpha=0.99, eps=1e-8, *, inplace=False):
    r"""One step of RMSprop (no momentum, not centered). Returns (param, square_avg).

    v_t     = alpha * v_{t-1} + (1 - alpha) * g_t^2
    theta_t = theta_{t-1} - lr * g_t / (sqrt(v_t) + eps)
    """
    param, square_avg = _copies(inplace, param, square_avg)
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    return param.addcdiv_(grad, square_avg.sqrt().add_(eps), value=-lr), square_avg


def adadelta_step(param, grad, square_avg, delta_avg, lr=1.0, rho=0.9, eps=1e-6, *, inplace=False):
    r"""One step of Adadelta. Returns (param, square_avg, delta_avg).

    v_t     = rho * v_{t-1} + (1 - rho) * g_t^2
    d_t     = sqrt(u_{t-1} + eps) / sqrt(v_t + eps) * g_t
    u_t     = rho * u_{t-1} + (1 - rho) * d_t^2
    theta_t = theta_{t-1} - lr * d_t
    """
    param, square_avg, delta_avg = _copies(inplace, param, square_avg, delta_avg)
    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    d = delta_avg.add(eps).sqrt_().div_(square_avg.add(eps).sqrt_()).mul_(grad)
    delta_avg.mul_(rho).addcmul_(d, d, value=1 - rho)
    return param.add_(d, alpha=-lr), square_avg, delta_avg


def adam_step(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, *, inplace=False):
    r"""Adam's step number ``step`` (t = 1, 2, ...). Returns (param, m, v).

        m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        m_hat_t = m_t / (1 - beta1^t)
        v_hat_t = v_t / (1 - beta2^t)
        theta_t = theta_{t-1} - lr * m_hat_t / (sqrt(v_hat_t) + eps)

    The bias corrections undo the pull of m_0 = v_0 = 0 towards zero in the first
    steps; they tend to 1 as t grows. The code folds them into the step size and the
    denominator instead of forming m_hat_t and v_hat_t (as torch.optim does).
    """
    param, m, v = _copies(inplace, param, m, v)
    m.lerp_(grad, 1 - beta1)  # m = beta1 * m + (1 - beta1) * g
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denom = v.sqrt().div_(math.sqrt(bias_correction2)).add_(eps)  # sqrt(v_hat) + eps
    return param.addcdiv_(m, denom, value=-lr / bias_correction1), m, v  # lr * m_hat / denom


def delta_bar_delta_step(
    param, grad, lr, grad_avg, kappa=1e-3, phi=0.1, beta=0.7, *, inplace=False
):
    r"""One step of delta-bar-delta. Returns (param, lr, grad_avg).

        lr_t    = lr_{t-1} + kappa        if gbar_{t-1} * g_t > 0
                = (1 - phi) * lr_{t-1}    if gbar_{t-1} * g_t < 0
                = lr_{t-1}                otherwise
        theta_t = theta_{t-1} - lr_t * g_t
        gbar_t  = beta * gbar_{t-1} + (1 - beta) * g_t

    ``lr`` is a tensor shaped like the parameter: one rate per weight.
    """
    param, lr, grad_avg = _copies(inplace, param, lr, grad_avg)
    agreement = grad_avg * grad
    lr[agreement > 0] += kappa
    lr[agreement < 0] *= 1 - phi
    param.addcmul_(lr, grad, value=-1)
    return param, lr, grad_avg.mul_(beta).add_(grad, alpha=1 - beta)


class SGD(torch.optim.Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    Update rule::

        g_t     = g_t + weight_decay * theta_{t-1}
        v_t     = momentum * v_{t-1} + (1 - dampening) * g_t      (v_1 = g_1)
        d_t     = g_t + momentum * v_t    if nesterov
                = v_t                     otherwise
        theta_t = theta_{t-1} - lr * d_t

    With ``momentum=0`` this is plain SGD: theta_t = theta_{t-1} - lr * g_t.
    As in PyTorch the velocity starts as the first gradient (not
    (1 - dampening) * g_1), and lr multiplies the velocity rather than being
    folded into it, so changing lr mid-run takes effect at once.
    State per parameter: ``velocity`` (v_t, only when momentum != 0).
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        _validate.number(lr, "lr", low=0.0)
        _validate.number(momentum, "momentum", low=0.0)
        _validate.number(dampening, "dampening", low=0.0, high=1.0)
        _validate.number(weight_decay, "weight_decay", low=0.0)
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            dampening, weight_decay = group["dampening"], group["weight_decay"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                g = theta.grad
                if weight_decay != 0:
                    g = g.add(theta, alpha=weight_decay)
                state = self.state[theta]
                velocity = state.get("velocity") if momentum != 0 else None  # None: v_1 = g_1
                _, velocity = sgd_step(
                    theta, g, velocity, lr, momentum, dampening, group["nesterov"], inplace=True
                )
                if momentum != 0:
                    state["velocity"] = velocity
        return loss


class Adagrad(torch.optim.Optimizer):
    r"""Adagrad (Duchi, Hazan & Singer, 2011): per-coordinate rates from the sum of g^2.

    Update rule::

        g_t     = g_t + weight_decay * theta_{t-1}
        v_t     = v_{t-1} + g_t^2                  (v_0 = initial_accumulator_value)
        theta_t = theta_{t-1} - lr * g_t / (sqrt(v_t) + eps)

    Coordinates with large past gradients take small steps; since v_t only
    grows, the effective rate lr / sqrt(v_t) decays over training. (torch.optim
    fills v_0 with the constructor's initial_accumulator_value for every param
    group; here a per-group value is honoured.)
    State per parameter: ``sum_sq`` (v_t).
    """

    def __init__(self, params, lr=1e-2, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        _validate.number(lr, "lr", low=0.0)
        _validate.number(weight_decay, "weight_decay", low=0.0)
        _validate.number(initial_accumulator_value, "initial_accumulator_value", low=0.0)
        _validate.number(eps, "eps", low=0.0)
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                state = self.state[theta]
                if not state:
                    state["sum_sq"] = torch.full_like(theta, group["initial_accumulator_value"])

                g = theta.grad
                if weight_decay != 0:
                    g = g.add(theta, alpha=weight_decay)
                adagrad_step(theta, g, state["sum_sq"], lr, eps, inplace=True)
        return loss


class RMSprop(torch.optim.Optimizer):
    r"""RMSprop (Hinton, 2012): divide g_t by a running RMS of recent gradients.

    Update rule::

        g_t     = g_t + weight_decay * theta_{t-1}
        v_t     = alpha * v_{t-1} + (1 - alpha) * g_t^2                (v_0 = 0)
        m_t     = alpha * m_{t-1} + (1 - alpha) * g_t     if centered   (m_0 = 0)
        s_t     = sqrt(v_t - m_t^2) + eps                 if centered
                = sqrt(v_t) + eps                         otherwise
        b_t     = momentum * b_{t-1} + g_t / s_t          if momentum > 0   (b_0 = 0)
        theta_t = theta_{t-1} - lr * b_t                  if momentum > 0
                = theta_{t-1} - lr * g_t / s_t            otherwise

    ``centered`` divides by an estimate of the gradient's standard deviation
    instead of its root mean square. State per parameter: ``square_avg`` (v_t),
    ``grad_avg`` (m_t, if centered), ``velocity`` (b_t, if momentum > 0).
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
    ):
        _validate.number(lr, "lr", low=0.0)
        _validate.number(alpha, "alpha", low=0.0, high=1.0, high_open=True)
        _validate.number(eps, "eps", low=0.0)
        _validate.number(weight_decay, "weight_decay", low=0.0)
        _validate.number(momentum, "momentum", low=0.0)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                state = self.state[theta]
                if not state:
                    state["square_avg"] = torch.zeros_like(theta)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(theta)
                    if momentum > 0:
                        state["velocity"] = torch.zeros_like(theta)

                g = theta.grad
                if weight_decay != 0:
                    g = g.add(theta, alpha=weight_decay)
                if not group["centered"] and momentum == 0:
                    rmsprop_step(theta, g, state["square_avg"], lr, alpha, eps, inplace=True)
                    continue
                # The two variants divide differently: by an estimate of the standard
                # deviation (centered), and/or through a velocity (momentum).
                v = state["square_avg"]
                v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
                if group["centered"]:
                    m = state["grad_avg"]
                    m.lerp_(g, 1 - alpha)  # m = alpha * m + (1 - alpha) * g
                    s = v.addcmul(m, m, value=-1).sqrt_().add_(eps)
                else:
                    s = v.sqrt().add_(eps)
                if momentum > 0:
                    b = state["velocity"]
                    b.mul_(momentum).addcdiv_(g, s)
                    theta.add_(b, alpha=-lr)
                else:
                    theta.addcdiv_(g, s, value=-lr)
        return loss


class Adadelta(torch.optim.Optimizer):
    r"""Adadelta (Zeiler, 2012): RMSprop whose step size is the RMS of past updates.

    Update rule::

        g_t     = g_t + weight_decay * theta_{t-1}
        v_t     = rho * v_{t-1} + (1 - rho) * g_t^2                  (v_0 = 0)
        d_t     = sqrt(u_{t-1} + eps) / sqrt(v_t + eps) * g_t
        u_t     = rho * u_{t-1} + (1 - rho) * d_t^2                  (u_0 = 0)
        theta_t = theta_{t-1} - lr * d_t

    The ratio of the two RMS values has the units of theta, so the method
    needs no learning rate in principle; lr (default 1) just scales d_t.
    State per parameter: ``square_avg`` (v_t), ``delta_avg`` (u_t).
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        _validate.number(lr, "lr", low=0.0)
        _validate.number(rho, "rho", low=0.0, high=1.0)
        _validate.number(eps, "eps", low=0.0)
        _validate.number(weight_decay, "weight_decay", low=0.0)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            weight_decay = group["weight_decay"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                state = self.state[theta]
                if not state:
                    state["square_avg"] = torch.zeros_like(theta)
                    state["delta_avg"] = torch.zeros_like(theta)

                g = theta.grad
                if weight_decay != 0:
                    g = g.add(theta, alpha=weight_decay)
                v, u = state["square_avg"], state["delta_avg"]
                adadelta_step(theta, g, v, u, lr, rho, eps, inplace=True)
        return loss


class Adam(torch.optim.Optimizer):
    r"""Adam (Kingma & Ba, 2015): momentum on g_t, scaled by a running RMS of g_t.

    Update rule::

        g_t     = g_t + weight_decay * theta_{t-1}      (L2 penalty; see AdamW)
        m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t                (m_0 = 0)
        v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t^2              (v_0 = 0)
        m_hat_t = m_t / (1 - beta1^t)
        v_hat_t = v_t / (1 - beta2^t)
        theta_t = theta_{t-1} - lr * m_hat_t / (sqrt(v_hat_t) + eps)

    The moments and the step are ``adam_step``'s.
    State per parameter: ``step`` (t), ``exp_avg`` (m_t), ``exp_avg_sq`` (v_t).
    """

    decoupled_weight_decay = False  # AdamW sets this to True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        _validate.number(lr, "lr", low=0.0)
        betas = _check_betas(betas)
        _validate.number(eps, "eps", low=0.0)
        _validate.number(weight_decay, "weight_decay", low=0.0)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay = group["weight_decay"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                state = self.state[theta]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(theta)
                    state["exp_avg_sq"] = torch.zeros_like(theta)
                state["step"] += 1

                g = theta.grad
                if weight_decay != 0 and self.decoupled_weight_decay:
                    theta.mul_(1 - lr * weight_decay)
                elif weight_decay != 0:
                    g = g.add(theta, alpha=weight_decay)
                m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                adam_step(theta, g, m, v, t, lr, beta1, beta2, eps, inplace=True)
        return loss


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    Update rule (the decay moves from g_t to the first line)::

        theta'  = (1 - lr * weight_decay) * theta_{t-1}      (shrink the weights)
        m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        m_hat_t = m_t / (1 - beta1^t)
        v_hat_t = v_t / (1 - beta2^t)
        theta_t = theta' - lr * m_hat_t / (sqrt(v_hat_t) + eps)

    In Adam the decay term is added to g_t and then divided by sqrt(v_hat_t), so
    weights with large gradients are barely decayed; here every weight shrinks
    by the same factor (1 - lr * weight_decay) per step.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class DeltaBarDelta(torch.optim.Optimizer):
    r"""Delta-bar-delta (Jacobs, 1988): one learning rate per weight, adapted by sign agreement.

    Update rule::

        lr_t    = lr_{t-1} + kappa        if gbar_{t-1} * g_t > 0   (same sign: speed up)
                = (1 - phi) * lr_{t-1}    if gbar_{t-1} * g_t < 0   (sign flip: slow down)
                = lr_{t-1}                otherwise
        theta_t = theta_{t-1} - lr_t * g_t
        gbar_t  = beta * gbar_{t-1} + (1 - beta) * g_t             (gbar_0 = 0)

    lr_t is a tensor shaped like theta, starting at ``lr`` everywhere. The rate
    grows additively, so it cannot explode within a few steps, and shrinks
    geometrically, so it can quickly recover from oscillation. Jacobs calls
    beta "theta"; it is renamed here to avoid a clash with the parameters.
    The ``lr`` hyperparameter only sets lr_0: changing a group's "lr" later
    (e.g. with a scheduler) has no effect.
    State per parameter: ``lr`` (lr_t), ``grad_avg`` (gbar_t).
    """

    def __init__(self, params, lr=1e-2, kappa=1e-3, phi=0.1, beta=0.7):
        _validate.number(lr, "lr", low=0.0)
        _validate.number(kappa, "kappa", low=0.0)
        _validate.number(phi, "phi", low=0.0, high=1.0)
        _validate.number(beta, "beta", low=0.0, high=1.0, high_open=True)
        defaults = dict(lr=lr, kappa=kappa, phi=phi, beta=beta)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            kappa, phi, beta = group["kappa"], group["phi"], group["beta"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                state = self.state[theta]
                if not state:
                    state["lr"] = torch.full_like(theta, group["lr"])
                    state["grad_avg"] = torch.zeros_like(theta)

                lr, gbar = state["lr"], state["grad_avg"]
                delta_bar_delta_step(theta, theta.grad, lr, gbar, kappa, phi, beta, inplace=True)
        return loss


def newton_step(f, x: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
    r"""One (damped) Newton step on a scalar function of a vector.

        x_new = x - (H + damping * I)^{-1} grad,    grad = f'(x) (n,),  H = f''(x) (n, n)

    ``f`` maps a 1-D tensor of shape (n,) to a scalar tensor; gradient and
    Hessian come from ``torch.autograd.functional``. On a quadratic
    f(x) = 1/2 x^T A x - b^T x one undamped step lands on the minimum A^{-1} b
    from anywhere. ``damping`` > 0 interpolates towards a gradient step of
    size 1/damping and keeps the step defined when H is singular or indefinite
    (H + damping * I must be invertible). Returns the new x, a fresh tensor.
    """
    _validate.tensor(x, "x", floating=True)
    if x.dim() != 1:
        raise ValueError(f"x must be a 1-D tensor, got shape {tuple(x.shape)}")
    damping = _validate.number(damping, "damping", low=0.0)
    x = x.detach()
    grad = torch.autograd.functional.jacobian(f, x)
    H = torch.autograd.functional.hessian(f, x)
    identity = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
    return x - torch.linalg.solve(H + damping * identity, grad)


# --- heavy-ball momentum on a quadratic (lecture 02, section 5) ------------------------------


def _hessian_eigenvalues(hessian) -> torch.Tensor:
    """The eigenvalues of a symmetric positive semi-definite, nonzero Hessian (ascending)."""
    _validate.tensor(hessian, "hessian", floating=True)
    if hessian.dim() != 2 or hessian.shape[0] != hessian.shape[1] or hessian.numel() == 0:
        raise ValueError(f"hessian must be a square matrix (d, d), got {tuple(hessian.shape)}")
    if not torch.isfinite(hessian).all():
        raise ValueError("hessian must be finite, but it holds NaN or inf")
    scale = hessian.abs().max().item()
    if not torch.allclose(hessian, hessian.T, rtol=1e-6, atol=1e-9 * scale):
        raise ValueError("hessian must be symmetric")
    eigenvalues = torch.linalg.eigvalsh(hessian.double())
    if eigenvalues[-1] <= 0 or eigenvalues[0] < -1e-9 * eigenvalues[-1]:
        raise ValueError(
            "hessian must be positive semi-definite and not zero, got eigenvalues from "
            f"{eigenvalues[0].item():.3g} to {eigenvalues[-1].item():.3g}"
        )
    return eigenvalues.clamp(min=0.0)


def momentum_max_lr(hessian: torch.Tensor, momentum: float = 0.0) -> float:
    r"""The learning rates for which heavy-ball momentum converges on a quadratic: lr below this.

    On f(w) = 1/2 (w - w*)^T H (w - w*), SGD with momentum (PyTorch's form, constant lr)
    is the heavy ball w_t = w_{t-1} - lr * H (w_{t-1} - w*) + momentum * (w_{t-1} - w_{t-2}).
    Along an eigenvector of H with eigenvalue lam the error e_t obeys

        e_t = (1 + momentum - lr * lam) e_{t-1} - momentum * e_{t-2},

    whose characteristic polynomial r^2 - (1 + momentum - lr * lam) r + momentum has both
    roots inside the unit circle exactly when |1 + momentum - lr * lam| < 1 + momentum,
    that is 0 < lr * lam < 2 (1 + momentum). So every direction converges iff

        0 < lr < 2 (1 + momentum) / lam_max.

    hessian: (d, d) symmetric positive semi-definite, not zero; momentum in [0, 1).
    Returns 2 (1 + momentum) / lam_max as a Python float (2 / lam_max without momentum).
    """
    momentum = _validate.number(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    lam_max = _hessian_eigenvalues(hessian)[-1].item()
    return 2 * (1 + momentum) / lam_max


def momentum_rate(hessian: torch.Tensor, lr: float, momentum: float = 0.0) -> float:
    r"""The factor by which heavy-ball momentum shrinks the error per step, in the long run.

    With the recurrence of ``momentum_max_lr``, the error along an eigenvector with
    eigenvalue lam is a combination of r1^t and r2^t, the roots of
    r^2 - a r + momentum with a = 1 + momentum - lr * lam. Their largest modulus is

        (|a| + sqrt(a^2 - 4 momentum)) / 2     if a^2 >= 4 momentum (real roots)
        sqrt(momentum)                         otherwise (complex roots: a damped spiral)

    and the slowest direction decides: rate = max over the eigenvalues of that modulus.
    Without momentum it is max_i |1 - lr * lam_i|, gradient descent's factor. A rate >= 1
    means no convergence. (With a repeated root the error decays like t * rate^t: the rate
    is still the factor per step in the long run.)

    hessian: (d, d) symmetric positive semi-definite, not zero; lr > 0; momentum in [0, 1).
    Returns the rate as a Python float.
    """
    lr = _validate.number(lr, "lr", low=0.0, low_open=True)
    momentum = _validate.number(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    a = 1 + momentum - lr * _hessian_eigenvalues(hessian)
    discriminant = a**2 - 4 * momentum
    real = (a.abs() + discriminant.clamp(min=0.0).sqrt()) / 2
    modulus = torch.where(discriminant >= 0, real, math.sqrt(momentum))
    return modulus.max().item()
