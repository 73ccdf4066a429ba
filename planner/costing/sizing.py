"""How a plan sizes its run for a compute budget: the law's compute-optimal (N, D), or under the
request's constraints (unique tokens, inference tokens, a chosen token multiplier), and what
over-training at that multiplier costs against the compute-optimal run.

`plan`, its budget ranges and the projection table all size runs here, so they cannot disagree.
"""

from __future__ import annotations

from planner.costing.results import Inference, Overtraining
from planner.errors import PlannerError
from planner.laws import Law, allocate


def allocate_run(law: Law, flops: float, *, inference_tokens: float | None = None, unique_tokens: float | None = None,
                 tokens_per_param: float | None = None, target_loss: float | None = None
                 ) -> tuple[float, float, Inference | None]:
    """(N, D) for law compute C (6ND), and the inference-aware comparison when inference tokens are given."""
    if tokens_per_param is not None:
        n, d = allocate.at_multiplier(flops, tokens_per_param)
        return float(n), float(d), None
    if inference_tokens is not None:
        chin_n, chin_d = (float(x) for x in law.allocate(flops))
        loss = target_loss if target_loss is not None else law.frontier_loss(flops)
        if loss is None:
            raise PlannerError(f"needs a law that predicts loss; '{law.name}' does not", "inference_tokens")
        n, d = allocate.inference_aware(law, float(loss), inference_tokens)
        chin_total = 6 * chin_n * chin_d + 2 * chin_n * inference_tokens
        total = 6 * n * d + 2 * n * inference_tokens
        inference = Inference(inference_tokens=inference_tokens, inference_flops=2 * n * inference_tokens,
                              total_flops=total, equal_loss=float(loss), compute_optimal_params=chin_n,
                              compute_optimal_tokens=chin_d, compute_optimal_total_flops=chin_total,
                              total_flops_saved=1 - total / chin_total,
                              method="Sardana et al. 2024: minimise 6·N·D_train + 2·N·D_inference at equal loss")
        return n, d, inference
    if unique_tokens is not None:
        n, d = allocate.numeric_optimum(law, flops, unique_tokens)
        return n, d, None
    n, d = law.allocate(flops)
    return float(n), float(d), None


def law_compute_for_loss(law: Law, target_loss: float, tokens_per_param: float | None) -> float:
    """Law compute (6ND) whose run reaches `target_loss`: on the compute-optimal frontier, or at a fixed multiplier."""
    if tokens_per_param is None:
        return float(law.flops_for_loss(target_loss))
    return allocate.flops_for_loss_at(law, target_loss, tokens_per_param)


def overtraining(law: Law, params: float, tokens: float) -> Overtraining:
    """The run (N, D) against the compute-optimal run of the same compute: its size, its loss, and the
    compute the compute-optimal model would need to reach the same loss."""
    flops = 6.0 * params * tokens
    opt_n, opt_d = (float(x) for x in law.allocate(flops))
    loss = law.predict_loss(params, tokens)
    opt_loss = law.frontier_loss(flops)
    same_loss_flops = None
    if loss is not None:
        try:
            same_loss_flops = float(law.flops_for_loss(float(loss)))
        except PlannerError:  # a loss beyond the law's frontier range: no compute-optimal run to compare with
            same_loss_flops = None
    return Overtraining(
        tokens_per_param=tokens / params, compute_optimal_params=opt_n, compute_optimal_tokens=opt_d,
        compute_optimal_tokens_per_param=opt_d / opt_n, loss=None if loss is None else float(loss),
        compute_optimal_loss=None if opt_loss is None else float(opt_loss),
        compute_optimal_flops_same_loss=same_loss_flops,
        extra_compute=None if same_loss_flops is None else flops / same_loss_flops - 1.0,
        method=f"Gadre et al. 2024 (arXiv 2403.08540): at M = D/N tokens per parameter, N = √(C/6M) and D = M·N; "
               f"losses from law '{law.name}'")
