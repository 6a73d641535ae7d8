"""The derivative factory (test/factory.py) builds every dynamics model and cost bound in
``dmpc_core._core``: a model added to the core without a finite-difference check fails here."""
from __future__ import annotations

import inspect

from dmpc_core import _core
from factory import cost_cases, dynamics_cases


def bound_models() -> dict[str, set[str]]:
    """Names of the concrete classes bound in _core that derive from DynamicsModel / CostModel."""
    out: dict[str, set[str]] = {"dynamics": set(), "cost": set()}
    for name, obj in vars(_core).items():
        if not inspect.isclass(obj):
            continue
        if obj is not _core.DynamicsModel and issubclass(obj, _core.DynamicsModel):
            out["dynamics"].add(name)
        if obj is not _core.CostModel and issubclass(obj, _core.CostModel):
            out["cost"].add(name)
    return out


def built(cases) -> set[str]:
    return {type(case.build()).__name__ for case in cases}


def test_the_scan_finds_the_models_of_the_core():
    found = bound_models()
    assert {"BallbotDynamics", "PandaDynamics", "PendulumDynamics"} <= found["dynamics"]
    assert {"QuadraticCost", "MlpEnsembleCost", "HorizonSwitchCost", "PendulumSwingUpCost"} <= found["cost"]


def test_every_bound_dynamics_model_is_in_the_factory():
    missing = bound_models()["dynamics"] - built(dynamics_cases())
    assert not missing, f"dynamics models bound in _core without a case in test/factory.py: {sorted(missing)}"


def test_every_bound_cost_is_in_the_factory():
    missing = bound_models()["cost"] - built(cost_cases())
    assert not missing, f"costs bound in _core without a case in test/factory.py: {sorted(missing)}"
