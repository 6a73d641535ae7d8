"""Python-defined cost terms (``_core.CostModel`` subclasses) for prototyping."""
from dmpc_core.costs.relaxed_barrier import BoxBarrierCost, relaxed_log_barrier

__all__ = ["BoxBarrierCost", "relaxed_log_barrier"]
