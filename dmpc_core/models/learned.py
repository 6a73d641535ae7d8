"""Learned control-affine dynamics in torch (training) and their native twins (planning).

The model (lecture-model-based-rl, "global models"; ``_core.ControlAffineMlpDynamics``):

    xdot = a_theta(phi(x)) + B_theta(phi(x)) u,

a tanh MLP y = net(phi(x)) with y = [a (nl); B row-major (nl x nu)]. With a position/velocity
split (``nq > 0``, x = [q; v]) only the accelerations are learned (qdot = v, nl = nv); otherwise
all nx rows (nl = nx). phi(x) is a list of features ("id" | "cos" | "sin", index), as the MPQ
Q network's [cos theta, sin theta, theta_dot].

Training (:func:`fit_ensemble`) goes through the planner's integrator at the control step (default
semi-implicit Euler, one model evaluation per step, as the MPPI/SLQ rollouts integrate): the loss
is the mean squared error of the predicted state difference x_{t+1} - x_t, each row divided by
its standard deviation in the data (normalised state differences). Inputs are normalised by the
data's feature mean/std, outputs scaled so that a unit network output is one standard deviation
of the observed acceleration (and of acceleration per unit control for B).

A bootstrap ensemble (:class:`DynamicsEnsemble`, mbrl-lib / PETS style) fits M members on M
resamplings with replacement. Natively: :func:`member_to_native` ->
``_core.ControlAffineMlpDynamics``, :func:`ensemble_to_native` -> the members and their
``_core.EnsembleMeanDynamics`` (SLQ plans on the mean; MPPI gets the members through
``MppiSolver.set_rollout_models``, one member per sample, or averaged).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from dmpc_core import _core

FEATURE_KINDS = ("id", "cos", "sin")
INTEGRATORS = ("semi_implicit_euler", "euler", "rk4")


def _check_features(features: Sequence[Tuple[str, int]], nx: int) -> List[Tuple[str, int]]:
    out = []
    for f in features:
        kind, idx = str(f[0]), int(f[1])
        if kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; expected one of {FEATURE_KINDS}")
        if not 0 <= idx < nx:
            raise ValueError(f"feature index {idx} outside [0, nx={nx})")
        out.append((kind, idx))
    if not out:
        raise ValueError("a learned model needs at least one feature")
    return out


class ControlAffineMlp(nn.Module):
    """One member: float64 tanh MLP giving xdot = a(phi(x)) + B(phi(x)) u (see the module docstring).

    Args:
        nx, nu: state and control sizes; nq: 0 or nx/2 (x = [q; v], only vdot learned).
        features: phi(x) as (kind, index) pairs; hidden: hidden widths (tanh).
    """

    def __init__(self, nx: int, nu: int, nq: int, features: Sequence[Tuple[str, int]], hidden: Sequence[int]) -> None:
        super().__init__()
        if nx < 1 or nu < 1:
            raise ValueError("need nx >= 1 and nu >= 1")
        if nq not in (0, nx // 2) or (nq and 2 * nq != nx):
            raise ValueError("nq must be 0 or nx/2 (x = [q; v])")
        self.nx, self.nu, self.nq = int(nx), int(nu), int(nq)
        self.nl = self.nx - self.nq
        self.features = _check_features(features, nx)
        self.hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {self.hidden}")
        nz, nout = len(self.features), self.nl * (1 + self.nu)
        sizes = [nz, *self.hidden, nout]
        self.layers = nn.ModuleList([nn.Linear(sizes[i], sizes[i + 1], dtype=torch.float64)
                                     for i in range(len(sizes) - 1)])
        self.register_buffer("input_mean", torch.zeros(nz, dtype=torch.float64))
        self.register_buffer("input_std", torch.ones(nz, dtype=torch.float64))
        self.register_buffer("output_scale", torch.ones(nout, dtype=torch.float64))
        self.register_buffer("output_bias", torch.zeros(nout, dtype=torch.float64))
        idx = torch.tensor([i for _, i in self.features], dtype=torch.long)
        self.register_buffer("_feat_index", idx, persistent=False)
        self._kinds = [k for k, _ in self.features]

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        cols = []
        for c, kind in enumerate(self._kinds):
            v = x[..., int(self._feat_index[c])]
            cols.append(v if kind == "id" else (torch.cos(v) if kind == "cos" else torch.sin(v)))
        return torch.stack(cols, dim=-1)

    def affine_terms(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """a (..., nl) and B (..., nl, nu) at states x (..., nx)."""
        h = (self.phi(x) - self.input_mean) / self.input_std
        for layer in self.layers[:-1]:
            h = torch.tanh(layer(h))
        y = self.layers[-1](h) * self.output_scale + self.output_bias
        a = y[..., : self.nl]
        B = y[..., self.nl:].reshape(*y.shape[:-1], self.nl, self.nu)
        return a, B

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """xdot (..., nx) at x (..., nx), u (..., nu)."""
        a, B = self.affine_terms(x)
        acc = a + (B @ u.unsqueeze(-1)).squeeze(-1)
        if self.nq:
            return torch.cat([x[..., self.nq:], acc], dim=-1)
        return acc


class DynamicsEnsemble(nn.Module):
    """M bootstrap members with the same architecture; ``forward`` gives every member's xdot (M, ..., nx)."""

    def __init__(self, nx: int, nu: int, nq: int, features, hidden, num_members: int) -> None:
        super().__init__()
        if num_members < 1:
            raise ValueError(f"num_members must be >= 1, got {num_members}")
        self.members = nn.ModuleList([ControlAffineMlp(nx, nu, nq, features, hidden) for _ in range(num_members)])
        m0 = self.members[0]
        self.nx, self.nu, self.nq, self.features, self.hidden = m0.nx, m0.nu, m0.nq, m0.features, m0.hidden

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x, u) for m in self.members])

    def mean(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.forward(x, u).mean(0)


def integrate(f, x: torch.Tensor, u: torch.Tensor, dt: float, integrator: str, nq: int) -> torch.Tensor:
    """One step of the planner's integrators (``_core.integrate``) with xdot = f(x, u), u held."""
    if integrator == "semi_implicit_euler":
        if nq == 0:
            raise ValueError("semi_implicit_euler needs a second-order model (nq > 0)")
        xd = f(x, u)
        v1 = x[..., nq:] + dt * xd[..., nq:]
        return torch.cat([x[..., :nq] + dt * v1, v1], dim=-1)
    if integrator == "euler":
        return x + dt * f(x, u)
    if integrator == "rk4":
        k1 = f(x, u)
        k2 = f(x + 0.5 * dt * k1, u)
        k3 = f(x + 0.5 * dt * k2, u)
        k4 = f(x + dt * k3, u)
        return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    raise ValueError(f"unknown integrator {integrator!r}; expected one of {INTEGRATORS}")


@dataclass
class LearnedModelSettings:
    """Attributes:
    num_members: bootstrap ensemble size M (mbrl-lib: 7 with 5 elites; PETS: 5).
    hidden: tanh hidden widths (mbrl-lib: 4 x 200 SiLU; tanh here, for the native forward mode).
    integrator: the planner's integrator the loss goes through ("semi_implicit_euler" needs nq > 0).
    gradient_steps: Adam steps of a fit from a fresh initialisation (all members together).
    warm_start: refits continue from the current weights, with the normalisation of the first
        fit kept (False: every fit restarts from a fresh initialisation and new normalisation).
    refit_gradient_steps: Adam steps of a warm-started refit.
    batch_size: minibatch size; learning_rate, weight_decay: Adam (decoupled decay, AdamW).
    bootstrap: resample the data with replacement per member (False: every member sees all data,
        members differ by initialisation only).
    min_target_std: floor on the per-row std of x_{t+1} - x_t used for the loss normalisation.
    torch_threads: if > 0, ``torch.set_num_threads`` (process-wide) at each fit (the small
        batched products are slower with more threads on a shared machine).
    """

    num_members: int = 5
    hidden: tuple = (64, 64)
    integrator: str = "semi_implicit_euler"
    gradient_steps: int = 300
    warm_start: bool = True
    refit_gradient_steps: int = 150
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    bootstrap: bool = True
    min_target_std: float = 1e-6
    torch_threads: int = 1

    def validate(self) -> None:
        if self.num_members < 1 or self.gradient_steps < 0 or self.refit_gradient_steps < 0 or self.batch_size < 1:
            raise ValueError("num_members, batch_size must be >= 1 and gradient_steps >= 0")
        if self.integrator not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {INTEGRATORS}, got {self.integrator!r}")
        if not self.learning_rate > 0 or self.weight_decay < 0 or not self.min_target_std > 0:
            raise ValueError("learning_rate and min_target_std must be > 0, weight_decay >= 0")


def _as_arrays(X, U, Xn, nx: int, nu: int):
    X = np.asarray(X, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    Xn = np.asarray(Xn, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != nx or Xn.shape != X.shape or U.shape != (X.shape[0], nu):
        raise ValueError(f"transitions must be X (N, {nx}), U (N, {nu}), Xn (N, {nx}); got "
                         f"{X.shape}, {U.shape}, {Xn.shape}")
    if X.shape[0] < 2:
        raise ValueError("need at least 2 transitions to fit a model")
    for name, a in (("X", X), ("U", U), ("Xn", Xn)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"transitions {name} contain non-finite values")
    return X, U, Xn


def set_normalisation(model: ControlAffineMlp, X: np.ndarray, U: np.ndarray, Xn: np.ndarray, dt: float) -> None:
    """Input mean/std of phi(x) over the data; output scales: one data std of the acceleration
    (d v / dt) for a, that divided by the control std for B."""
    with torch.no_grad():
        Z = model.phi(torch.as_tensor(X)).numpy()
        std = Z.std(0)
        model.input_mean.copy_(torch.as_tensor(Z.mean(0)))
        model.input_std.copy_(torch.as_tensor(np.where(std > 1e-8, std, 1.0)))
        rows = (Xn - X)[:, model.nq:] / dt
        s_acc = np.maximum(rows.std(0), 1e-6)
        s_u = np.maximum(U.std(0), 1e-6)
        scale = np.concatenate([s_acc, (s_acc[:, None] / s_u[None, :]).reshape(-1)])
        model.output_scale.copy_(torch.as_tensor(scale))
        model.output_bias.zero_()


def reset_parameters(model: ControlAffineMlp, generator: torch.Generator) -> None:
    """PyTorch's default Linear initialisation, drawn from ``generator`` (reproducible per member)."""
    with torch.no_grad():
        for layer in model.layers:
            bound = 1.0 / np.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)


def _stacked_forward(ens: "DynamicsEnsemble", Ws, bs, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """xdot of all members at once: x (M, B, nx), u (M, B, nu), weights stacked over members
    (Ws[i] (M, out, in), bs[i] (M, out)); the same arithmetic as ControlAffineMlp.forward."""
    m0 = ens.members[0]
    dt_ = Ws[0].dtype
    mean = torch.stack([m.input_mean for m in ens.members])[:, None, :].to(dt_)
    std = torch.stack([m.input_std for m in ens.members])[:, None, :].to(dt_)
    oscale = torch.stack([m.output_scale for m in ens.members])[:, None, :].to(dt_)
    obias = torch.stack([m.output_bias for m in ens.members])[:, None, :].to(dt_)
    h = (m0.phi(x) - mean) / std
    L = len(Ws)
    for i in range(L):
        h = torch.baddbmm(bs[i][:, None, :], h, Ws[i].transpose(1, 2))
        if i + 1 < L:
            h = torch.tanh(h)
    y = h * oscale + obias
    nl, nu = m0.nl, m0.nu
    a = y[..., :nl]
    B = y[..., nl:].reshape(*y.shape[:-1], nl, nu)
    acc = a + (B @ u.unsqueeze(-1)).squeeze(-1)
    return torch.cat([x[..., m0.nq:], acc], dim=-1) if m0.nq else acc


def fit_ensemble(ens: DynamicsEnsemble, X, U, Xn, dt: float, settings: LearnedModelSettings,
                 seed: int = 0) -> dict:
    """Fit every member on (bootstrap resamples of) transitions (x_t, u_t, x_{t+1}) taken at
    control step ``dt``, through ``settings.integrator``. All members train together (weights
    stacked over members, one batched Adam): member k sees its own bootstrap resample and
    minibatches. The first fit of ``ens`` (and every fit without ``settings.warm_start``) starts
    from a fresh initialisation drawn from ``seed`` and sets the normalisation from the data
    (``settings.gradient_steps``); later fits continue from the current weights
    (``settings.refit_gradient_steps``, a fresh Adam state, the first fit's normalisation). Returns
    diagnostics: the final normalised training loss (mean over members) and the normalised
    one-step error of the ensemble mean on all data (:func:`one_step_error`)."""
    settings.validate()
    if settings.torch_threads > 0:
        torch.set_num_threads(int(settings.torch_threads))
    X, U, Xn = _as_arrays(X, U, Xn, ens.nx, ens.nu)
    N, M = X.shape[0], len(ens.members)
    rng = np.random.default_rng(seed)
    d_std = np.maximum((Xn - X).std(0), settings.min_target_std)
    # training runs in float32 (tanh and the batched products are several times faster than in
    # float64); the fitted weights are stored back into the float64 members
    f32 = torch.float32
    tX, tU, tXn = (torch.as_tensor(a, dtype=f32) for a in (X, U, Xn))
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    warm = settings.warm_start and getattr(ens, "fitted", False)
    if not warm:
        for m in ens.members:
            reset_parameters(m, gen)
            set_normalisation(m, X, U, Xn, dt)
        ens.loss_scale = d_std
    else:
        d_std = ens.loss_scale  # the loss normalisation of the first fit, as the input/output ones
    steps = settings.refit_gradient_steps if warm else settings.gradient_steps
    t_dstd = torch.as_tensor(d_std, dtype=f32)
    tD = torch.as_tensor((Xn - X) / d_std, dtype=f32)
    Ws = [torch.stack([m.layers[i].weight.detach() for m in ens.members]).to(f32).requires_grad_(True)
          for i in range(len(ens.members[0].layers))]
    bs = [torch.stack([m.layers[i].bias.detach() for m in ens.members]).to(f32).requires_grad_(True)
          for i in range(len(ens.members[0].layers))]
    boot = (np.stack([rng.integers(0, N, size=N) for _ in range(M)]) if settings.bootstrap and M > 1
            else np.tile(np.arange(N), (M, 1)))
    opt = torch.optim.AdamW([*Ws, *bs], lr=settings.learning_rate, weight_decay=settings.weight_decay)
    bsz = min(settings.batch_size, N)
    last = float("nan")
    f = lambda x, u: _stacked_forward(ens, Ws, bs, x, u)  # noqa: E731
    for _ in range(steps):
        pick = rng.integers(0, N, size=(M, bsz))
        b = torch.as_tensor(np.take_along_axis(boot, pick, axis=1))
        x, u = tX[b], tU[b]
        pred = (integrate(f, x, u, dt, settings.integrator, ens.nq) - x) / t_dstd
        loss = ((pred - tD[b]) ** 2).mean() * M  # sum over members of each member's mean loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = float(loss.detach()) / M
    with torch.no_grad():
        for k, m in enumerate(ens.members):
            for i, layer in enumerate(m.layers):
                layer.weight.copy_(Ws[i][k].to(torch.float64))
                layer.bias.copy_(bs[i][k].to(torch.float64))
    ens.fitted = True
    err = one_step_error(ens, X, U, Xn, dt, settings.integrator, d_std)
    return {"model/train_loss": last, "model/one_step_error": err, "model/transitions": N}


def one_step_error(ens: DynamicsEnsemble, X, U, Xn, dt: float, integrator: str, d_std=None) -> float:
    """Mean squared one-step error of the ensemble mean on (X, U, Xn), each state row divided by
    ``d_std`` (default: the data's std of x_{t+1} - x_t): 1.0 is the error of predicting no motion's
    variance, 0 is perfect."""
    X, U, Xn = _as_arrays(X, U, Xn, ens.nx, ens.nu)
    if d_std is None:
        d_std = np.maximum((Xn - X).std(0), 1e-12)
    with torch.no_grad():
        tX = torch.as_tensor(X)
        pred = integrate(ens.mean, tX, torch.as_tensor(U), dt, integrator, ens.nq).numpy()
    return float(np.mean(((pred - Xn) / d_std) ** 2))


def member_to_native(m: ControlAffineMlp) -> "_core.ControlAffineMlpDynamics":
    """The native twin of one member (same float64 weights: agrees to rounding)."""
    W = [l.weight.detach().numpy().astype(np.float64) for l in m.layers]
    b = [l.bias.detach().numpy().astype(np.float64) for l in m.layers]
    return _core.ControlAffineMlpDynamics(
        m.nx, m.nu, m.nq, list(m.features), W, b, m.input_mean.numpy().copy(), m.input_std.numpy().copy(),
        m.output_scale.numpy().copy(), m.output_bias.numpy().copy())


def ensemble_to_native(ens: DynamicsEnsemble):
    """(members, mean): the native members (for ``MppiSolver.set_rollout_models``) and their
    ``_core.EnsembleMeanDynamics`` (for SLQ, and the MPPI solver's own nominal rollout)."""
    members = [member_to_native(m) for m in ens.members]
    return members, _core.EnsembleMeanDynamics(members)


def disagreement(ens_native: "_core.EnsembleMeanDynamics", X: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Per-state ensemble disagreement: the norm of the per-row std of the members' xdot, shape (N,)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    U = np.atleast_2d(np.asarray(U, dtype=np.float64))
    return np.array([float(np.linalg.norm(ens_native.disagreement(x, u))) for x, u in zip(X, U)])


def make_ensemble(nx: int, nu: int, nq: int, features, settings: LearnedModelSettings,
                  seed: Optional[int] = None) -> DynamicsEnsemble:
    if seed is not None:
        torch.manual_seed(int(seed))
    return DynamicsEnsemble(nx, nu, nq, features, tuple(settings.hidden), settings.num_members)


__all__ = ["ControlAffineMlp", "DynamicsEnsemble", "LearnedModelSettings", "FEATURE_KINDS", "INTEGRATORS",
           "integrate", "fit_ensemble", "one_step_error", "member_to_native", "ensemble_to_native",
           "disagreement", "make_ensemble", "set_normalisation", "reset_parameters"]
