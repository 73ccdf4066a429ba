"""How many GPUs one run can keep busy: beyond the critical batch size, more GPUs only buy a larger batch.

McCandlish et al. 2018 (An Empirical Model of Large-Batch Training, arXiv 1812.06162): a loss needs
S = S_min (1 + B_crit / B) optimizer steps and E = E_min (1 + B / B_crit) training tokens at batch B.
Below the critical batch B_crit a larger batch saves steps almost for free; above it, it saves few steps
and costs tokens. Kaplan et al. 2020 (Scaling Laws for Neural Language Models, arXiv 2001.08361, Eq. 5.3,
also Eq. 1.4) measured B_crit for language models as a function of the loss alone:

    B_crit(L) ≈ B* / L^(1/alpha_B),  B* ≈ 2e8 tokens,  alpha_B ≈ 0.21  (L in nats per token)

A run on G GPUs needs at least one sequence per tensor-parallel group in every step: a pipeline of p
stages keeps its GPUs busy only with about p micro-batches per step (its bubble is (p - 1)/m of the step
with m micro-batches; Narayanan et al. 2021, Efficient Large-Scale Language Model Training on GPU
Clusters Using Megatron-LM), so pipelining does not shrink that floor, and tensor parallelism stays
inside one node. Llama 3 405B ran at exactly this floor (16M-token batches of 8,192-token sequences on
16k GPUs with TP 8; Dubey et al. 2024). When the floor is far above B_crit, the plan's wall-clock is
not reachable: the run takes too few optimizer steps, and the law's loss at that batch needs more
tokens than planned.
"""

from __future__ import annotations

from planner.costing.hardware import Hardware
from planner.costing.memory import MAX_TP_WITHOUT_NODE
from planner.costing.runs import RunShape
from planner.errors import PlannerWarning

B_STAR = 2e8  # tokens (Kaplan et al. 2020, Eq. 5.3)
ALPHA_B = 0.21
# When the law predicts no loss: the irreducible loss E = 1.69 of Hoffmann et al. 2022 (Approach 3), a
# lower loss than any planned run reaches, hence the largest critical batch and the fewest warnings.
FLOOR_LOSS = 1.69
# At twice the critical batch a loss needs (1 + 2) / (1 + 1) = 1.5x the tokens of a run at B_crit
# (McCandlish et al. 2018): beyond that the planned tokens are no longer what the run needs.
MAX_CRITICAL_MULTIPLE = 2.0


def critical_batch(loss: float) -> float:
    """Kaplan et al. 2020, Eq. 5.3: the critical batch in tokens at loss `loss` (nats per token)."""
    return B_STAR / loss ** (1.0 / ALPHA_B)


def usable_loss(loss: float | None) -> float:
    """The loss to read B_crit at: the law's, unless it has none or one no language model has (Kaplan
    measured 2 to 6 nats; a law file's odd coefficients can predict anything), then FLOOR_LOSS."""
    return loss if loss is not None and FLOOR_LOSS / 2 <= loss <= 20 else FLOOR_LOSS


def batch_warning(tokens: float, loss: float | None, gpus: int, gpus_per_node: int, seq_len: int) -> PlannerWarning | None:
    """A warning when `gpus` GPUs need a batch above MAX_CRITICAL_MULTIPLE times the critical batch at `loss`
    (the law's loss of the run; FLOOR_LOSS when it predicts none): one `seq_len` sequence per node-wide
    tensor-parallel group."""
    loss = usable_loss(loss)
    smallest = gpus / gpus_per_node * seq_len
    critical = critical_batch(loss)
    if smallest <= MAX_CRITICAL_MULTIPLE * critical:
        return None
    return PlannerWarning("batch", (
        f"{gpus:,} GPUs need at least {smallest:.3g} tokens per step (one {seq_len}-token sequence per {gpus_per_node}-GPU "
        f"tensor-parallel group), {smallest / critical:.3g}x the critical batch at loss {loss:.3g} ({critical:.3g} tokens: "
        f"Kaplan et al. 2020 Eq. 5.3, McCandlish et al. 2018): {tokens / smallest:.3g} optimizer steps instead of at "
        f"least {tokens / (MAX_CRITICAL_MULTIPLE * critical):.3g}, and the law's loss at that batch needs about "
        f"{(1 + smallest / critical) / 2:.3g}x the tokens; plan fewer GPUs"))


def run_batch_warnings(hw: Hardware | None, rs: RunShape, tokens: float, loss: float | None) -> list[PlannerWarning]:
    """`batch_warning` for a planned language-model run on `hw` (none without a GPU count)."""
    if hw is None or hw.gpus is None:
        return []
    found = batch_warning(tokens, loss, hw.gpus, hw.gpus_per_node or MAX_TP_WITHOUT_NODE, rs.seq_len)
    return [found] if found else []
