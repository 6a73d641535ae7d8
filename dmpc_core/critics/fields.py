"""The transition row layout shared by the controller (which records rows), the learner (which
stores and fits them) and the wire format, in a module of its own so that the controller and its
MPC worker do not import the learning code (torch).

One row per executed control step: ``state`` (nx), ``goal`` (ng), ``time_to_go`` (1), ``cost``
(1), ``next_state`` (nx), ``next_time_to_go`` (1), ``done`` (1).
"""

TRANSITION_FIELDS = ("state", "goal", "time_to_go", "cost", "next_state", "next_time_to_go", "done")
