"""Regulatory lines a plan crosses by its training compute alone.

The EU AI Act (Regulation (EU) 2024/1689) presumes a general-purpose AI model to have high-impact
capabilities, and so to carry systemic risk, when its training used more than 1e25 floating-point
operations in total (Article 51(2)); the provider must then notify the Commission within two weeks
(Article 52(1)). The count is cumulative training compute, so the larger of the law's 6ND and the
hardware convention's count (attention included) is the one compared.
"""

from __future__ import annotations

from planner.errors import PlannerWarning

EU_AI_ACT_SYSTEMIC_RISK_FLOPS = 1e25
EU_AI_ACT_SOURCE = ("Regulation (EU) 2024/1689 (AI Act), Article 51(2) and Article 52(1), OJ L 2024/1689, 12.7.2024, "
                    "eur-lex.europa.eu/eli/reg/2024/1689/oj")


def regulatory_warnings(training_flops: float) -> list[PlannerWarning]:
    """Warnings for the thresholds `training_flops` (the cumulative training compute) exceeds."""
    if not training_flops > EU_AI_ACT_SYSTEMIC_RISK_FLOPS:
        return []
    return [PlannerWarning("regulation", f"{training_flops:.3g} training FLOPs exceed 1e25: the EU AI Act presumes a "
                           "general-purpose AI model trained with this compute to carry systemic risk (Article 51(2)); "
                           "its provider must notify the European Commission within two weeks of knowing the threshold "
                           f"will be met (Article 52(1)). Source: {EU_AI_ACT_SOURCE}")]
