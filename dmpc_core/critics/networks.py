"""Critic networks: goal/time conditioned value MLP, randomized-prior ensemble, Q MLP.

All networks are smooth float64 MLPs with the normalisation and the output affine map
*inside* the model, so an exported bundle is self-contained (see ``export.py``):

    z  = concat(x, g, tau)                      (value)   or concat(x, u, g) (Q)
    zn = (z - input_mean) / input_std
    h_0 = zn,  h_{i+1} = act(W_i h_i + b_i)      i = 0 .. L-1   (act = tanh by default)
    y  = W_L h_L + b_L                           (linear output layer, 1 unit)
    V  = output_scale * y + output_bias

Derivatives for the MPC actor (deep-value-mpc Eq. 14 needs dV/dtau, dV/dx, d2V/dx2) are
computed by :func:`mlp_derivatives`, an *exact* forward-mode chain rule written in plain
torch ops (Jacobian and Hessian of every layer w.r.t. the selected inputs). It exists because
the torch.onnx TorchScript exporter available here cannot trace ``torch.func`` transforms
(``jacrev``/``hessian``/``vmap``; the dynamo exporter needs ``onnxscript``, which is not
installed). The test suite checks it against ``torch.autograd`` to 1e-6 relative.

Sign convention of the ensemble (POLO Eq. 6): dmpc controllers MINIMISE cost and V is a
cost-to-go. Optimism therefore favours LOW cost, so the aggregate is a soft-min:

    V_agg = -(1/kappa) * (logsumexp_k(-kappa * V_k) - log K)

which equals the mean of the V_k as kappa -> 0 (kappa == 0 is evaluated as the exact mean)
and min_k V_k as kappa -> inf. Each member is V_k = V_theta_k + beta * V_prior_k with a
frozen randomly initialised prior network (randomized prior functions, POLO Eq. 5).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from dmpc_core.critics.contract import NATIVE_ACTIVATIONS, SUPPORTED_ACTIVATIONS  # noqa: F401  (re-exported)

DTYPE = torch.float64


@dataclass
class ValueMLPSettings:
    """Architecture of a value network V(x, g, tau).

    Attributes:
        nx: state dimension.
        ng: goal dimension (0: no goal input).
        hidden: hidden layer widths; the paper uses 3 x 12.
        activation: "tanh" (default, native C++ supported) or "softplus" (ONNX only).
    """

    nx: int
    ng: int = 0
    hidden: Tuple[int, ...] = (12, 12, 12)
    activation: str = "tanh"


@dataclass
class ValueEnsembleSettings:
    """Randomized-prior ensemble (POLO Eqs. 5-6).

    Attributes:
        value: architecture shared by all members and priors.
        num_members: K, number of members.
        prior_beta: beta, scale of the frozen random prior added to each member.
        kappa: optimism temperature (>= 0); 0 is the plain mean, large is the min.
    """

    value: ValueMLPSettings
    num_members: int = 4
    prior_beta: float = 1.0
    kappa: float = 1.0


@dataclass
class QMLPSettings:
    """Architecture of a Q network Q(x, u, g) (MPQ).

    Attributes:
        nx: state dimension.
        nu: action dimension.
        ng: goal dimension (0: no goal input).
        hidden: hidden layer widths.
        activation: "tanh" or "softplus".
    """

    nx: int
    nu: int
    ng: int = 0
    hidden: Tuple[int, ...] = (64, 64)
    activation: str = "tanh"


def _check_activation(activation: str) -> None:
    if activation not in SUPPORTED_ACTIVATIONS:
        raise ValueError(
            f"activation {activation!r} is not supported; use one of {SUPPORTED_ACTIVATIONS} "
            "(critics must be smooth: their Hessian feeds the MPC actor)"
        )


def activation_and_derivatives(a: torch.Tensor, activation: str):
    """Return (sigma(a), sigma'(a), sigma''(a)) elementwise.

    tanh:     s' = 1 - s^2,            s'' = -2 s (1 - s^2)
    softplus: s' = sigmoid(a) =: p,    s'' = p (1 - p)
    """
    if activation == "tanh":
        h = torch.tanh(a)
        d1 = 1.0 - h * h
        return h, d1, -2.0 * h * d1
    if activation == "softplus":
        # log(1 + e^a) written stably with ops onnxruntime implements in float64 (it has no
        # double Softplus kernel): max(a, 0) + log1p(exp(-|a|))
        h = torch.relu(a) + torch.log1p(torch.exp(-torch.abs(a)))
        p = torch.sigmoid(a)
        return h, p, p * (1.0 - p)
    raise ValueError(f"unknown activation {activation!r}")


class NormalizedMLP(nn.Module):
    """Scalar MLP with input normalisation and output affine map (see module docstring).

    Parameter / buffer names match the bundle contract: ``input_mean`` [nz], ``input_std``
    [nz], ``layers.{i}.weight`` [out, in], ``layers.{i}.bias`` [out], ``output_scale`` [1],
    ``output_bias`` [1].

    Args:
        nz: input width.
        hidden: hidden layer widths (may be empty: a linear model).
        activation: "tanh" or "softplus".
    """

    def __init__(self, nz: int, hidden: Sequence[int], activation: str = "tanh") -> None:
        super().__init__()
        _check_activation(activation)
        if nz <= 0:
            raise ValueError(f"input width must be positive, got {nz}")
        if any(int(h) <= 0 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {list(hidden)}")
        self.nz = int(nz)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        widths = [self.nz, *self.hidden, 1]
        self.layers = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1], dtype=DTYPE) for i in range(len(widths) - 1)
        )
        self.register_buffer("input_mean", torch.zeros(self.nz, dtype=DTYPE))
        self.register_buffer("input_std", torch.ones(self.nz, dtype=DTYPE))
        self.register_buffer("output_scale", torch.ones(1, dtype=DTYPE))
        self.register_buffer("output_bias", torch.zeros(1, dtype=DTYPE))

    # -- configuration -------------------------------------------------------------------
    @torch.no_grad()
    def set_input_normalization(self, mean, std) -> None:
        """Set zn = (z - mean) / std. ``std`` must be positive (clamp tiny stds yourself)."""
        mean = torch.as_tensor(mean, dtype=DTYPE).reshape(-1)
        std = torch.as_tensor(std, dtype=DTYPE).reshape(-1)
        if mean.numel() != self.nz or std.numel() != self.nz:
            raise ValueError(f"normalisation needs {self.nz} entries, got {mean.numel()}, {std.numel()}")
        if not bool(torch.all(std > 0)) or not bool(torch.all(torch.isfinite(mean))):
            raise ValueError("input_std must be positive and input_mean finite")
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)

    @torch.no_grad()
    def set_output_affine(self, scale: float, bias: float) -> None:
        """Set V = scale * y + bias."""
        self.output_scale.fill_(float(scale))
        self.output_bias.fill_(float(bias))

    # -- evaluation ----------------------------------------------------------------------
    def forward_z(self, z: torch.Tensor) -> torch.Tensor:
        """Value for raw inputs z [B, nz] -> [B]."""
        h = (z - self.input_mean) / self.input_std
        for layer in self.layers[:-1]:
            h, _, _ = activation_and_derivatives(layer(h), self.activation)
        y = self.layers[-1](h).squeeze(-1)
        return self.output_scale * y + self.output_bias

    def derivatives_z(self, z: torch.Tensor, select: Sequence[int], second_order: bool = True):
        """Value, gradient and Hessian w.r.t. the inputs ``z[:, select]`` (exact, forward mode).

        Forward-mode chain rule with a_i = W_i h_i + b_i, J_i = dh_i/dp, H_i = d2h_i/dp2:
            J_0 = E / std (E selects the columns of p),  H_0 = 0
            J_{i+1} = s'(a_i) * (W_i J_i)
            H_{i+1} = s'(a_i) * (W_i H_i) + s''(a_i) * (W_i J_i) (x) (W_i J_i)
            dV/dp = scale * W_L J_L,  d2V/dp2 = scale * W_L H_L

        Args:
            z: [B, nz] inputs.
            select: m indices into z of the differentiation variables p.
            second_order: also return the Hessian (else None).
        Returns:
            (V [B], grad [B, m], hess [B, m, m] or None)
        """
        sel = list(int(i) for i in select)
        batch = z.shape[0]
        h = (z - self.input_mean) / self.input_std
        # W_0 J_0 = W_0[:, sel] / std[sel]  ([n_1, m], the same for every sample)
        wj = (self.layers[0].weight[:, sel] / self.input_std[sel]).unsqueeze(0).expand(batch, -1, -1)
        wh = None  # W_i H_i; H_0 = 0
        a = self.layers[0](h)
        for layer in self.layers[1:]:
            h, d1, d2 = activation_and_derivatives(a, self.activation)
            jac = d1.unsqueeze(-1) * wj  # J_{i+1} [B, n, m]
            hess = None
            if second_order:
                hess = d2.unsqueeze(-1).unsqueeze(-1) * (wj.unsqueeze(-1) * wj.unsqueeze(-2))
                if wh is not None:
                    hess = hess + d1.unsqueeze(-1).unsqueeze(-1) * wh
            a = layer(h)
            wj = torch.matmul(layer.weight, jac)
            if second_order:  # W_{i+1} H_{i+1} as one MatMul over the flattened m x m block
                wh = torch.matmul(layer.weight, hess.reshape(batch, hess.shape[1], -1)).reshape(
                    batch, -1, hess.shape[2], hess.shape[3])
            else:
                wh = None
        value = self.output_scale * a.squeeze(-1) + self.output_bias
        grad = self.output_scale * wj[:, 0, :]
        hz = None
        if second_order:
            if wh is None:  # no hidden layer: a linear model has zero curvature
                hz = torch.zeros(batch, len(sel), len(sel), dtype=z.dtype)
            else:
                hz = self.output_scale * wh[:, 0]
        return value, grad, hz


def _value_input(state: torch.Tensor, goal: Optional[torch.Tensor], time_to_go: torch.Tensor, ng: int):
    parts = [state]
    if ng > 0:
        if goal is None:
            raise ValueError(f"this value network needs a goal of width {ng}")
        parts.append(goal)
    parts.append(time_to_go.reshape(state.shape[0], 1))
    return torch.cat(parts, dim=-1)


class ValueMLP(NormalizedMLP):
    """Goal and time-to-go conditioned value network V(x, g, tau) (deep-value-mpc Sec. 5).

    Input order z = [x (nx), g (ng), tau (1)].

    Args:
        settings: architecture (:class:`ValueMLPSettings`).
    """

    def __init__(self, settings: ValueMLPSettings) -> None:
        if settings.nx <= 0 or settings.ng < 0:
            raise ValueError(f"need nx > 0 and ng >= 0, got nx={settings.nx} ng={settings.ng}")
        super().__init__(settings.nx + settings.ng + 1, settings.hidden, settings.activation)
        self.settings = copy.deepcopy(settings)
        self.nx = settings.nx
        self.ng = settings.ng

    def forward(self, state: torch.Tensor, goal: Optional[torch.Tensor], time_to_go: torch.Tensor) -> torch.Tensor:
        """V [B] for state [B, nx], goal [B, ng] (None if ng == 0), time_to_go [B] or [B, 1]."""
        return self.forward_z(_value_input(state, goal, time_to_go, self.ng))

    def value_and_derivatives(self, state, goal, time_to_go) -> Dict[str, torch.Tensor]:
        """Exact derivatives (see :meth:`NormalizedMLP.derivatives_z`).

        Returns dict with ``value`` [B], ``dvalue_dx`` [B, nx], ``d2value_dx2`` [B, nx, nx],
        ``dvalue_dt`` [B] and ``d2value_dtdx`` [B, nx], t being the time-to-go tau.
        """
        z = _value_input(state, goal, time_to_go, self.ng)
        return _split_value_derivatives(*self.derivatives_z(z, self.select_indices()), self.nx)

    def select_indices(self) -> List[int]:
        """Indices of (x, tau) in z."""
        return list(range(self.nx)) + [self.nx + self.ng]


@dataclass
class LeadValueMLPSettings:
    """A value network V(e, tau) of the goal-relative lead point (see :class:`LeadValueMLP`).

    Attributes:
        nx: state dimension; ng: goal dimension (= len(position_indices)).
        hidden: hidden layer widths.
        position_indices / velocity_indices: state indices of the positions p and of their
            rates v (same length as the goal).
        lead: [s] look-ahead time of e = p + lead * v - g.
        length_scale: [m] e is divided by this before the first layer.
        time_to_go_scale: [s] tau enters as tau / time_to_go_scale - 1.
        activation: as :class:`ValueMLPSettings`.
    """

    nx: int
    ng: int
    hidden: Tuple[int, ...] = (12, 12, 12)
    position_indices: Tuple[int, ...] = (0, 1)
    velocity_indices: Tuple[int, ...] = (5, 6)
    lead: float = 0.3
    length_scale: float = 1.0
    time_to_go_scale: float = 1.5
    activation: str = "tanh"


class TiedInputLinear(nn.Module):
    """First layer W = free @ basis: a linear layer on the features basis @ zn (``basis`` fixed).

    ``weight`` is the equivalent dense [out, nz] matrix (what ``derivatives_z`` and the exported
    plain MLP use)."""

    def __init__(self, basis: torch.Tensor, out_features: int) -> None:
        super().__init__()
        k = basis.shape[0]
        self.register_buffer("basis", basis.to(DTYPE))
        self.free = nn.Parameter(torch.empty(out_features, k, dtype=DTYPE))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=DTYPE))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh weights, uniform in +-1/sqrt(k) (k features), like ``nn.Linear``'s bias."""
        bound = 1.0 / math.sqrt(self.free.shape[1])
        with torch.no_grad():
            self.free.uniform_(-bound, bound)
            self.bias.uniform_(-bound, bound)

    @property
    def weight(self) -> torch.Tensor:
        return self.free @ self.basis

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(h, self.weight, self.bias)


class LeadValueMLP(ValueMLP):
    """Value of the goal-relative lead point: V(x, g, tau) = MLP(e / L, tau / s - 1),
    e = p + lead * v - g (p = x[position_indices], v = x[velocity_indices]).

    Why (deep-value-mpc Eq. 14): the DMPC actor tracks the greedy input
    u* = -R^-1 g(x)' dV/dx, and on a robot whose inputs act on accelerations only dV/dv drives
    it. Training starts are at rest and the actor is deterministic, so in the replay data v is a
    function of (p, tau) and a full-state regression leaves dV/dv unconstrained (any value of it
    fits the data). Tying v to p through the point p + lead * v fixes dV/dv = lead * dV/dp: the value's
    slope towards the goal becomes a bounded push of the robot towards the goal. The goal enters
    only through p - g, so one critic serves every goal (translation invariance). The other
    state entries (tilt, yaw and their rates) are left to the actor's nominal upright terms.

    The structure lives in the first layer (:class:`TiedInputLinear`); :meth:`plain` returns the
    equivalent :class:`ValueMLP` (dense first layer) for export, so the bundle and the native
    evaluator are unchanged. The input normalisation is part of the structure and fixed.
    """

    def __init__(self, settings: LeadValueMLPSettings) -> None:
        pi, vi = list(settings.position_indices), list(settings.velocity_indices)
        if len(pi) != settings.ng or len(vi) != settings.ng:
            raise ValueError("position_indices and velocity_indices need one entry per goal coordinate")
        if not (settings.length_scale > 0 and settings.time_to_go_scale > 0 and math.isfinite(settings.lead)):
            raise ValueError("length_scale and time_to_go_scale must be > 0 and lead finite")
        if not settings.hidden:
            raise ValueError("LeadValueMLP needs at least one hidden layer")
        if max(pi + vi) >= settings.nx or min(pi + vi) < 0:
            raise ValueError("position/velocity indices out of range")
        super().__init__(ValueMLPSettings(nx=settings.nx, ng=settings.ng, hidden=tuple(settings.hidden),
                                          activation=settings.activation))
        self.lead_settings = copy.deepcopy(settings)
        nz = settings.nx + settings.ng + 1
        basis = torch.zeros(settings.ng + 1, nz, dtype=DTYPE)
        for i, (p, v) in enumerate(zip(pi, vi)):
            basis[i, p] = 1.0 / settings.length_scale
            basis[i, v] = settings.lead / settings.length_scale
            basis[i, settings.nx + i] = -1.0 / settings.length_scale
        basis[settings.ng, nz - 1] = 1.0  # tau, normalised below
        self.layers[0] = TiedInputLinear(basis, int(settings.hidden[0]))
        mean = torch.zeros(nz, dtype=DTYPE)
        std = torch.ones(nz, dtype=DTYPE)
        mean[-1] = std[-1] = settings.time_to_go_scale
        NormalizedMLP.set_input_normalization(self, mean, std)

    @torch.no_grad()
    def set_input_normalization(self, mean, std) -> None:
        raise ValueError("LeadValueMLP: the input normalisation is part of the structure (fixed)")

    @torch.no_grad()
    def plain(self) -> ValueMLP:
        """The equivalent plain :class:`ValueMLP` (same values and derivatives), for export."""
        out = ValueMLP(self.settings)
        state = {k: v.clone() for k, v in self.state_dict().items() if not k.startswith("layers.0.")}
        state["layers.0.weight"] = self.layers[0].weight.detach().clone()
        state["layers.0.bias"] = self.layers[0].bias.detach().clone()
        out.load_state_dict(state)
        return out


def _split_value_derivatives(value, grad, hess, nx: int) -> Dict[str, torch.Tensor]:
    return {
        "value": value,
        "dvalue_dx": grad[:, :nx],
        "d2value_dx2": hess[:, :nx, :nx],
        "dvalue_dt": grad[:, nx],
        "d2value_dtdx": hess[:, nx, :nx],
    }


class ValueEnsemble(nn.Module):
    """K value networks with randomized priors and an optimistic (soft-min) aggregate.

    Member k: V_k = members[k](z) + beta * priors[k](z) with ``priors[k]`` frozen at its random
    initialisation (POLO Eq. 5; train each member on its own targets / bootstrap). Aggregate
    (POLO Eq. 6, sign flipped for costs, see module docstring):
        V = -(1/kappa) (logsumexp_k(-kappa V_k) - log K)   (kappa > 0),   mean_k V_k (kappa = 0).

    Names in the state dict: ``members.{k}.<value names>``, ``priors.{k}.<value names>``,
    ``prior_beta`` [1], ``kappa`` [1].

    Args:
        settings: :class:`ValueEnsembleSettings`.
    """

    def __init__(self, settings: ValueEnsembleSettings) -> None:
        super().__init__()
        if settings.num_members < 1:
            raise ValueError("an ensemble needs at least one member")
        if not (settings.kappa >= 0.0 and math.isfinite(settings.kappa)):
            raise ValueError(f"kappa must be finite and >= 0, got {settings.kappa}")
        self.settings = copy.deepcopy(settings)
        self.nx = settings.value.nx
        self.ng = settings.value.ng
        self.members = nn.ModuleList(ValueMLP(settings.value) for _ in range(settings.num_members))
        self.priors = nn.ModuleList(ValueMLP(settings.value) for _ in range(settings.num_members))
        for p in self.priors.parameters():
            p.requires_grad_(False)
        self.register_buffer("prior_beta", torch.full((1,), float(settings.prior_beta), dtype=DTYPE))
        self.register_buffer("kappa", torch.full((1,), float(settings.kappa), dtype=DTYPE))

    @torch.no_grad()
    def set_input_normalization(self, mean, std) -> None:
        """Same normalisation for every member and prior."""
        for net in [*self.members, *self.priors]:
            net.set_input_normalization(mean, std)

    @torch.no_grad()
    def set_output_affine(self, scale: float, bias: float) -> None:
        """Output affine map of the trainable members (priors keep theirs)."""
        for net in self.members:
            net.set_output_affine(scale, bias)

    def member_values(self, state, goal, time_to_go) -> torch.Tensor:
        """[B, K] values of every member including its prior."""
        return torch.stack(
            [m(state, goal, time_to_go) + self.prior_beta * p(state, goal, time_to_go)
             for m, p in zip(self.members, self.priors)],
            dim=-1,
        )

    def aggregate(self, member_values: torch.Tensor) -> torch.Tensor:
        """Soft-min aggregate over the last axis [.., K] -> [..]."""
        k = member_values.shape[-1]
        if float(self.kappa) == 0.0:
            return member_values.mean(dim=-1)
        return -(torch.logsumexp(-self.kappa * member_values, dim=-1) - math.log(k)) / self.kappa

    def forward(self, state, goal, time_to_go) -> torch.Tensor:
        """Aggregated optimistic value [B]."""
        return self.aggregate(self.member_values(state, goal, time_to_go))

    def value_and_derivatives(self, state, goal, time_to_go) -> Dict[str, torch.Tensor]:
        """Exact derivatives of the aggregate (same keys as :meth:`ValueMLP.value_and_derivatives`).

        With w = softmax(-kappa V_k) and member gradients g_k, Hessians H_k:
            dV = sum_k w_k g_k,  d2V = sum_k w_k H_k - kappa (sum_k w_k g_k g_k^T - dV dV^T).
        """
        z = _value_input(state, goal, time_to_go, self.ng)
        sel = self.members[0].select_indices()
        vals, grads, hesss = [], [], []
        for m, p in zip(self.members, self.priors):
            v1, g1, h1 = m.derivatives_z(z, sel)
            v2, g2, h2 = p.derivatives_z(z, sel)
            vals.append(v1 + self.prior_beta * v2)
            grads.append(g1 + self.prior_beta * g2)
            hesss.append(h1 + self.prior_beta * h2)
        v = torch.stack(vals, dim=-1)  # [B, K]
        g = torch.stack(grads, dim=1)  # [B, K, m]
        hs = torch.stack(hesss, dim=1)  # [B, K, m, m]
        k = v.shape[-1]
        if float(self.kappa) == 0.0:
            w = torch.full_like(v, 1.0 / k)
        else:
            w = torch.softmax(-self.kappa * v, dim=-1)
        value = self.aggregate(v)
        grad = torch.einsum("bk,bkm->bm", w, g)
        hess = torch.einsum("bk,bkmn->bmn", w, hs)
        if float(self.kappa) != 0.0:
            second = torch.einsum("bk,bkm,bkn->bmn", w, g, g)
            hess = hess - self.kappa * (second - grad.unsqueeze(-1) * grad.unsqueeze(-2))
        return _split_value_derivatives(value, grad, hess, self.nx)


class QMLP(NormalizedMLP):
    """Action-value network Q(x, u, g) for MPQ; input order z = [x (nx), u (nu), g (ng)].

    Args:
        settings: :class:`QMLPSettings`.
    """

    def __init__(self, settings: QMLPSettings) -> None:
        if settings.nx <= 0 or settings.nu <= 0 or settings.ng < 0:
            raise ValueError(f"need nx > 0, nu > 0, ng >= 0, got {settings}")
        super().__init__(settings.nx + settings.nu + settings.ng, settings.hidden, settings.activation)
        self.settings = copy.deepcopy(settings)
        self.nx, self.nu, self.ng = settings.nx, settings.nu, settings.ng

    def _z(self, state, action, goal):
        parts = [state, action]
        if self.ng > 0:
            if goal is None:
                raise ValueError(f"this Q network needs a goal of width {self.ng}")
            parts.append(goal)
        return torch.cat(parts, dim=-1)

    def forward(self, state, action, goal=None) -> torch.Tensor:
        """Q [B] for state [B, nx], action [B, nu], goal [B, ng] (None if ng == 0)."""
        return self.forward_z(self._z(state, action, goal))

    def value_and_derivatives(self, state, action, goal=None) -> Dict[str, torch.Tensor]:
        """Q and its exact derivatives w.r.t. (x, u).

        Returns ``value`` [B], ``dvalue_dx`` [B, nx], ``dvalue_du`` [B, nu], ``d2value_dx2``
        [B, nx, nx], ``d2value_du2`` [B, nu, nu], ``d2value_dudx`` [B, nu, nx].
        """
        nx, nu = self.nx, self.nu
        v, g, h = self.derivatives_z(self._z(state, action, goal), list(range(nx + nu)))
        return {
            "value": v,
            "dvalue_dx": g[:, :nx],
            "dvalue_du": g[:, nx:],
            "d2value_dx2": h[:, :nx, :nx],
            "d2value_du2": h[:, nx:, nx:],
            "d2value_dudx": h[:, nx:, :nx],
        }
