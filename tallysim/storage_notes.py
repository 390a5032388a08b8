"""The note `tallysim run` prints before a stateful run under client_storage=auto: it stacks every client's
state, not the cohort's (docs/population.md documents it; the run said nothing, and a user who set auto to
hold a cohort saw a population's memory). Beside sizing.py (at its line limit) and its run_notes; cli_commands prints both."""
from __future__ import annotations

from tallysim import protocols
from tallysim.config_shapes import active_peers, models_bytes
from tallysim.sizing import fmt


def stateful_note(cfg) -> str | None:
    """One line for client_storage=auto with a cohort (A < P) and a protocol whose clients keep state
    (protocols.client_state: tally, faults.kind=straggler, optim.reset_each_round=false): what it holds and
    why. None otherwise (a stateless protocol's cohort: sizing.cohort_note)."""
    active = active_peers(cfg)
    if cfg.client_storage != "auto" or active >= cfg.peers or not (why := protocols.client_state(cfg)):
        return None
    # models_bytes sizes the top-level model, not model.groups' own: no size for a grouped run
    size = "" if cfg.model.groups else f" (about {fmt(models_bytes(cfg)[0])})"
    return (f"client_storage=auto stacks every client's state, all {cfg.peers:,} clients' models{size}, not the "
            f"{active:,} active ones a round: {why}; only a protocol whose clients keep nothing holds the "
            "cohort alone (docs/population.md)")
