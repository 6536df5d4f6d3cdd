"""SAC and REINFORCE learners; `load_policy` turns a trained run directory into a policy."""

from agents.policy import Policy, load_policy

__all__ = ["Policy", "load_policy"]
