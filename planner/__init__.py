"""planner: compute planning for open foundation-model research.

The Python API is the names in `__all__` (docs/api.md shows them in use). They are imported lazily
(PEP 562): `import planner` loads no numpy, pydantic or scipy, so the command line starts as fast
as before; the first use of a name imports the module that defines it.
"""

import importlib

__version__ = "0.1.0"

# public name -> (defining module, attribute); planner.api holds the few thin conveniences
_API: dict[str, tuple[str, str]] = {
    "PlannerError": ("planner.errors", "PlannerError"),
    "Catalog": ("planner.catalog", "Catalog"),
    "search_path": ("planner.catalog", "search_path"),
    # planning (`planner plan`)
    "plan": ("planner.api", "plan"),
    "PlanRequest": ("planner.costing.plan", "PlanRequest"),
    "build_request": ("planner.costing.plan", "build_request"),
    "make_plan": ("planner.costing.plan", "make_plan"),
    "Plan": ("planner.costing.results", "Plan"),  # what make_plan returns; .record() is its JSON
    "Costs": ("planner.costing.hardware", "Costs"),  # a run's hours, energy and charge, with ranges
    # memory (`planner memory`)
    "Layout": ("planner.costing.memory", "Layout"),
    "estimate_memory": ("planner.costing.memory", "estimate"),
    "min_nodes": ("planner.costing.layout", "min_nodes"),
    "best_layout": ("planner.costing.layout", "best_layout"),
    # fitting (`planner fit`, `planner compare`)
    "FitOptions": ("planner.fit", "FitOptions"),
    "fit_law": ("planner.api", "fit_law"),
    "compare_laws": ("planner.api", "compare_laws"),
    # sweeps (`planner sweep`)
    "load_spec": ("planner.sweep.spec", "load_spec"),
    "design_sweep": ("planner.sweep.design", "design"),
    "write_sweep": ("planner.api", "write_sweep"),
    # grants (`planner grant`)
    "load_proposal": ("planner.grant.proposal", "load_proposal"),
    "build_grant": ("planner.grant.build", "build"),
    "render_grant": ("planner.grant.render", "render"),
    # before spending (`planner simulate`)
    "simulate_sweep": ("planner.simulate.study", "simulate"),
    # scaling evidence and calibration (`planner scaling`, `planner calibrate`)
    "strong_scaling": ("planner.costing.scaling", "strong_scaling"),
    "campaign_report": ("planner.costing.calibration", "campaign_report"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        # AttributeError (not ImportError) keeps `from planner import fit` importing the subpackage
        raise AttributeError(f"module 'planner' has no attribute '{name}'")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
