"""`planner usage`: what an account has burnt, from Slurm's accounting (sacct), month by month in the
allocation's unit, against the sweep or proposal it was planned from, with JSC's monthly forfeiture.

sacct (the one call and its parser) is planner.slurm_io, shared with `planner status`; splitting jobs into
months is usage.months; the report is usage.burn; reading what was planned (a sweep directory, a proposal)
is usage.plans.
"""
