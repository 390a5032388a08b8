"""Which peers take part in a round: `participation_rule` (docs/config.md, docs/population-data.md).

Shape letters: P peers, A active peers (glossary: tallysim/sim/__init__.py).

uniform: A of the P peers uniformly without replacement (every peer's inclusion probability A/P).
size:    A peers drawn one after another without replacement, each draw picking a remaining peer with
         probability proportional to its shard size (successive sampling, "probability proportional to
         size without replacement"). Drawn in one step as the A largest of log(size_p) + Gumbel_p
         (the Gumbel-top-k trick, Kool, van Hoof, Welling, ICML 2019; equivalently Efraimidis &
         Spirakis 2006's weighted reservoir keys u^(1/size)). It is the without-replacement form of
         the sampling by data size of Li, Huang, Yang, Wang, Zhang, "On the Convergence of FedAvg on
         Non-IID Data" (ICLR 2020, Scheme I) and FedProx (Li et al., MLSys 2020), whose aggregate is
         then the plain mean of the sampled models: under `size` the FedAvg family's and bridge's
         aggregation weights are uniform over the cohort (`aggregation_counts`), not shard-size
         weighted again. The mean is unbiased for the size-weighted objective with replacement; without
         replacement it is so up to the O(A/P) difference between the two (what cross-device cohorts,
         A << P, have). Empty shards are never drawn (weight 0); build refuses a partition with fewer
         than A non-empty shards.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

RULES = ("uniform", "size")


def uniform(key, peers: int, active: int) -> jax.Array:
    """Sorted [A] indices, A of P uniformly without replacement (the rule of earlier versions, same draws)."""
    return jnp.sort(jax.random.permutation(key, peers)[:active])


def by_size(key, count_P, active: int) -> jax.Array:
    """Sorted [A] indices drawn successively without replacement with probability proportional to
    count_P (Gumbel-top-k on log count)."""
    log_w = jnp.where(count_P > 0, jnp.log(jnp.maximum(count_P, 1).astype(jnp.float32)), -jnp.inf)
    score_P = log_w + jax.random.gumbel(key, count_P.shape, jnp.float32)
    return jnp.sort(jax.lax.top_k(score_P, active)[1])


def aggregation_counts(rule: str, count_A) -> jax.Array:
    """What the server's weighted mean weighs the cohort's models by: their shard sizes (uniform
    sampling: FedAvg's weights), or ones (size sampling: the sizes already chose the cohort)."""
    return jnp.ones_like(count_A) if rule == "size" else count_A
