"""Scaling-law sweeps: the spec, the designed runs, their Slurm files, and collecting results."""
