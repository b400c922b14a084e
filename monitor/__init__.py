"""milestone-monitor: watches news feeds for evidence that milestones happened, slipped or are overdue."""

__version__ = "0.1.0"
