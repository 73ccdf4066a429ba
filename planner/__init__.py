"""planner: compute planning for open foundation-model research."""

__version__ = "0.1.0"
