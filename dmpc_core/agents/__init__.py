"""Learning agents: each a readable training loop on the compiled solvers and the critics."""
