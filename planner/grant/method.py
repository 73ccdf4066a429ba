"""The method paragraph of a grant document: `method_facts` (called by grant.build, since it reads
the catalog) collects each statement with the citations it rests on, and `justification` writes
the paragraph, numbering the citations [1], [2], ... in order of first use.
"""

from __future__ import annotations

import math

import numpy as np

from planner.costing import cost
from planner.grant.document import GrantDocument, GrantRow, MethodFact

# Where each FLOPs convention comes from (the formulas themselves are cost.FLOPS_CONVENTIONS).
CONVENTIONS = {
    "6ND": ("C = 6·N·D for language models (forward 2ND + backward 4ND; no attention term)",
            "Kaplan et al. 2020, Scaling Laws for Neural Language Models (arXiv 2001.08361) §2.1"),
    "moe": ("C = 6·N_active·D for mixture-of-experts models (only the experts a token is routed to do work)",
            "DeepSeek-AI 2024, DeepSeek-V3 Technical Report (arXiv 2412.19437): 37B of 671B parameters activated per token"),
    "clip": ("C = 6 × MACs per sample × samples seen for CLIP (2 FLOPs per MAC, backward = 2 × forward), with the "
             "forward GMACs per sample of each architecture from the model catalog",
             "Cherti et al. 2023, Reproducible scaling laws for contrastive language-image learning (arXiv 2212.07143)"),
}


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def method_facts(rows: list[GrantRow], cluster, catalog, p, program) -> list[MethodFact]:
    """The statements the justification paragraph is made of, each with the citations it rests on."""
    acc = catalog.accelerator(cluster.accelerator)
    peak = acc.peak_tflops.get(p.dtype, acc.peak_tflops["bf16"])
    facts = []
    for c in sorted({r.flops_convention for r in rows if r.flops_convention}):
        text, cite = CONVENTIONS.get(c, (cost.FLOPS_CONVENTIONS.get(c, c), None))
        cites = ([cite] if cite else []) + [x for r in rows if r.flops_convention == c for x in r.citations]
        facts.append(MethodFact("flops", text, tuple(dict.fromkeys(cites))))
    if facts:
        facts.append(MethodFact("hours", f"GPU-hours = C / (dense {p.dtype} peak of one {acc.title}, "
                                f"{peak.value:g} TFLOP/s, × MFU × 3600 s) / goodput, wall-clock = GPU-hours / GPUs and "
                                "node-hours = wall-clock × whole nodes, exactly as `planner plan` computes them",
                                (acc.cite(peak),)))
    bases: dict[str, list[str]] = {}
    for r in rows:
        if r.mfu_basis:
            bases.setdefault(r.mfu_basis, []).append(r.name)
    for basis, names in bases.items():
        cites = []
        for name in dict.fromkeys(n for r in rows if r.mfu_basis == basis for n in r.mfu_profiles):
            prof = catalog.mfu_profile(name)
            cites += [prof.sources[pt.source].reference for pt in prof.points]
        text = f"MFU for {_and(names)}: {basis}"
        if basis.startswith("campaign"):
            cites.append(campaign_citation(catalog))
        if not cites:
            text += ": an assumption, not a measurement on this system"
            if acc.matmul_ceiling is not None:
                text += f" (the measured matmul ceiling of one {acc.name} is {acc.matmul_ceiling.value:.3g} of peak, an upper bound)"
                cites.append(acc.cite(acc.matmul_ceiling))
        facts.append(MethodFact("mfu", text, tuple(dict.fromkeys(cites))))
    goodputs = sorted({r.goodput for r in rows if r.goodput is not None})
    campaign = any((r.mfu_basis or "").startswith("campaign") for r in rows)
    if goodputs and campaign and goodputs == [1.0]:
        facts.append(MethodFact("goodput", "restarts, evaluation, failures and idle time are included in the "
                                "realised MFU, as the published runs reported their GPU-hours", ()))
    elif goodputs:
        facts.append(MethodFact("goodput", "the goodput (fraction of allocated time that trains, the rest going to "
                                "restarts, evaluation and failures) is " + ", ".join(f"{g:g}" for g in goodputs)
                                + (" (steady state; restarts are left to the contingency)" if goodputs == [1.0]
                                   else " (assumed)"), ()))
    if any(r.units_interval for r in rows):
        facts.append(MethodFact("confidence", confidence_text(catalog, p.confidence), (campaign_citation(catalog),)))
    for law in sorted({r.law for r in rows if r.law}):
        facts.append(MethodFact("law", f"the sweep's model sizes are placed around the compute-optimal size of the "
                                f"scaling law '{law}'", (catalog.law(law).citation,)))
    acct = cluster.accounting.units_per_node_hour
    facts.append(MethodFact("charge", f"{cluster.title} accounts in {cluster.accounting.unit}, {acct.value:g} per "
                            f"node-hour ({cluster.status_of(acct)})", (cluster.cite(acct),)))
    if priced := next((r.cost for r in rows if r.cost is not None), None):
        whence = ("given in the proposal" if priced.status == "given" else
                  f"{priced.status}, as of {priced.as_of}" if priced.as_of else priced.status)
        facts.append(MethodFact("cost", f"the cost in money is the GPU-hours × {priced.per_gpu_hour:g} {priced.currency} per "
                                f"GPU-hour ({whence})", () if priced.status == "given" else (priced.source,)))
    c = program.contingency
    share = p.contingency if p.contingency is not None else c.default.value
    covers = ("runs that must be repeated or added (restarts within a run are already in the realised MFU)"
              if campaign else "failed runs and restarts")
    facts.append(MethodFact("contingency", f"the contingency of {share:.0%} covers {covers} "
                            f"({c.low.value:.0%}-{c.high.value:.0%} is a common convention, {program.status_of(c.default)})",
                            (program.cite(c.default),)))
    return facts


def campaign_citation(catalog) -> str:
    sets = catalog.all("campaigns")
    return "; ".join(f"{s.title} (each run with its paper: `planner catalog show {s.name}`, catalogs/campaigns/{s.name}.yaml "
                     "in the planner package)" for s in sets)


def confidence_text(catalog, confidence: float) -> str:
    """How the range and the request of each row were obtained, in numbers a reviewer can check."""
    from planner.costing.mfu_basis import benchmark_errors, campaign_estimator

    model = campaign_estimator(catalog)
    if model is None:
        return f"each row requests the {confidence:.0%} quantile of its estimate"
    score = model.chosen
    lo, hi = model.interval_factors(0.8, stack_stated=False)
    text = (f"the estimator of realised MFU was fitted on {model.n_runs} published end-to-end training runs and chosen "
            f"by leave-one-out error among {len(model.scores)} forms; out of sample, for a run whose training stack is "
            f"not stated half the runs lie within {math.expm1(score.unstated_median_abs):.0%} of their estimate and "
            f"{score.unstated_within_1_3:.0%} within a factor 1.3 (with the stack stated: "
            f"{math.expm1(score.median_abs):.0%} and {score.within_1_3:.0%}), and the 80% range of a row without a "
            f"stated stack is {lo:.2f}-{hi:.2f} times its estimate; each row requests the {confidence:.0%} quantile of "
            f"the errors that apply to it ({model.quantile_factor(confidence, False):.2f} times the estimate without a "
            f"stated stack, {model.quantile_factor(confidence, True):.2f} with one, never less than the estimate)")
    if benchmark_errors(catalog):
        med = float(np.exp(np.median(benchmark_errors(catalog))))
        text += (f"; for comparison, the tuned throughput benchmarks alone would put GPU-hours at 1/{med:.2f} of what "
                 "the published runs reported, at the median")
    return text


def justification(result: GrantDocument) -> tuple[str, list[str]]:
    """The method paragraph with numbered citations, and the reference list."""
    refs: list[str] = []

    def cite(items: tuple[str, ...]) -> str:
        nums = []
        for c in items:
            if c not in refs:
                refs.append(c)
            nums.append(refs.index(c) + 1)
        return f" [{', '.join(str(n) for n in sorted(set(nums)))}]" if nums else ""

    u, total = result.unit, result.total
    facts = {t: [f for f in result.method if f.topic == t]
             for t in ("flops", "hours", "mfu", "goodput", "confidence", "law", "charge", "cost", "contingency")}
    sentences = [
        f"We request {total.request:,} {u.label} on {result.cluster.title} over {result.months} months: "
        f"{total.node_hours:,.0f} node-hours or {total.gpu_hours:,.0f} GPU-hours as Slurm counts GPUs, "
        f"including a {result.contingency:.0%} contingency."]
    if facts["flops"]:
        sentences.append("Every training run is sized from its compute C, not from a guess at its duration: "
                         + "; ".join(f.text + cite(f.cite) for f in facts["flops"]) + ".")
    sentences += [_cap(f.text) + cite(f.cite) + "." for t in ("hours", "mfu", "law", "goodput", "confidence", "charge",
                                                                     "cost", "contingency")
                  for f in facts[t]]
    sentences.append(f"Conversion to the call's unit: {u.basis}.")
    sentences += [f"For comparison with the call's thresholds: {a.basis}." for a in result.also]
    if result.program.unit_status != "verified" or u.status not in ("verified", "derived"):
        sentences.append(f"The unit or its conversion is {u.status if u.status != 'verified' else result.program.unit_status}: "
                         "confirm it with the centre before submission.")
    if result.justification_extra:
        sentences.append(" ".join(result.justification_extra.split()))
    text = " ".join(sentences).replace("..", ".")
    return text, refs


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
