"""What `tallysim run` says before it starts about a costly default (`run_notes`; cli_commands prints them):
a stateless protocol paying for every client's model under client_storage=stacked (`storage_hint`), what
client_storage=auto holds instead (`cohort_note`), a large population drawn with cohort_draw=sort
(`draw_hint`), and a stateful run under client_storage=auto, which stacks every client's state, not the
cohort's (`stateful_note`: docs/population.md documents it; the run said nothing, and a user who set auto
to hold a cohort saw a population's memory). Pure Python, no JAX: the notes come before JAX starts.
Split from sizing.py, whose sizes they quote (sizing.fmt)."""
from __future__ import annotations

from tallysim import protocols
from tallysim.config_shapes import active_peers, models_bytes
from tallysim.sizing import fmt


def _a_seed(cfg) -> str:
    """" a seed" after a size of models when the run has several seeds: models_bytes sizes one seed's, and
    a 2-seed tally run over 10^5 clients noted "about 1.92 GB" and peaked at 9.0 GB (docs/population.md)."""
    return " a seed" if cfg.seeds > 1 else ""


def stateful_note(cfg) -> str | None:
    """One line for client_storage=auto with a cohort (A < P) and a protocol whose clients keep state
    (protocols.client_state: tally, faults.kind=straggler, optim.reset_each_round=false): what it holds and
    why. None otherwise (a stateless protocol's cohort: cohort_note)."""
    active = active_peers(cfg)
    if cfg.client_storage != "auto" or active >= cfg.peers or not (why := protocols.client_state(cfg)):
        return None
    # models_bytes sizes the top-level model, not model.groups' own: no size for a grouped run
    size = "" if cfg.model.groups else f" (about {fmt(models_bytes(cfg)[0])}{_a_seed(cfg)})"
    return (f"client_storage=auto stacks every client's state, all {cfg.peers:,} clients' models{size}, not the "
            f"{active:,} active ones a round: {why}; only a protocol whose clients keep nothing holds the "
            "cohort alone (docs/population.md)")


HINT_BYTES = 2**30      # stacked client models past this, for a protocol that could hold the cohort alone


def storage_hint(cfg) -> str | None:
    """A note for a run that pays for every client's model when it need not: a stateless protocol
    (protocols.client_state) under client_storage=stacked, a cohort per round, and the stacked models
    past HINT_BYTES. The default stays stacked so earlier results reproduce bit for bit
    (docs/population.md); this says what switching would save, once, before the run starts."""
    # A, not participation: a participation just below 1 can still round to every peer (no cohort)
    active = active_peers(cfg)
    if cfg.client_storage != "stacked" or active >= cfg.peers or protocols.client_state(cfg):
        return None
    # models_bytes reads the run's top-level model, not model.groups' own: never a grouped run here, since
    # every protocol that takes groups (model_groups.GROUP_PROTOCOLS) keeps each client's own model, so
    # client_state returned above (tests/test_storage_hint_dec19h.py pins it; a stateless one joining the
    # groups must size each group's models here)
    stacked, cohort = models_bytes(cfg)
    if stacked < HINT_BYTES:
        return None
    # evaluating every client model is the other cost: 10^5 of them each round took a 2-round run from 25 s
    # to over 20 minutes (docs/population-data.md) with nothing on stderr to say why
    evals = (f" and evaluates all {cfg.peers:,} at every evaluation (eval_peers=N: N of them)"
             if cfg.eval_peers is None or cfg.eval_peers >= cfg.peers else "")
    return (f"{cfg.protocol.name} keeps no client state, but client_storage=stacked holds all {cfg.peers:,} "
            f"clients' models (about {fmt(stacked)}{_a_seed(cfg)}){evals}; client_storage=auto would hold the "
            f"server model and the {active:,} active ones (about {fmt(cohort)}{_a_seed(cfg)}), same numbers up to "
            "float rounding (docs/population.md)")


def cohort_note(cfg) -> str | None:
    """storage_hint's line for a run that took its advice: a stateless protocol under client_storage=auto
    drawing a cohort whose stacked models would pass HINT_BYTES says what it holds instead. A stacked run
    told the user its models' memory before it started, a cohort run nothing (only --print-config's
    estimate, which names the largest part alone)."""
    active = active_peers(cfg)
    if cfg.client_storage != "auto" or active >= cfg.peers or protocols.client_state(cfg):
        return None
    stacked, cohort = models_bytes(cfg)         # the top-level model: stateless protocols take no groups
    if stacked < HINT_BYTES:
        return None
    return (f"client_storage=auto holds the server model and the {active:,} active clients' models a round (about "
            f"{fmt(cohort)}{_a_seed(cfg)}), not all {cfg.peers:,} clients' (about {fmt(stacked)}{_a_seed(cfg)}): "
            f"{cfg.protocol.name} keeps no client state, and the rows hold the server model's accuracy, not each "
            "client's (docs/population.md)")


DRAW_HINT_PEERS = 100_000      # where cohort_draw=sort's O(P) draw outweighs a small cohort's round


def draw_hint(cfg) -> str | None:
    """A note for a large population drawn with cohort_draw=sort (earlier versions' cohorts, 2 x P random
    keys a round): cohort_draw=sequential draws the same distribution from A numbers (sim/cohort.py)."""
    active = active_peers(cfg)
    if cfg.cohort_draw != "sort" or cfg.peers < DRAW_HINT_PEERS or active >= cfg.peers:
        return None
    return (f"cohort_draw=sort draws each round's {active:,} of {cfg.peers:,} clients in O(P) work (earlier "
            "versions' cohorts, bit for bit); cohort_draw=sequential draws them from the same distribution in "
            "O(A), other cohorts, a round's time flat in the population (docs/population.md)")


def run_notes(cfg) -> list[str]:
    """What `tallysim run` says before it starts about a costly default (storage, cohort draw)."""
    return [n for n in (storage_hint(cfg), cohort_note(cfg), draw_hint(cfg)) if n]


def sweep_notes(runs, cfgs) -> list[str]:
    """run_notes and stateful_note for a sweep's runs, each distinct line once, naming its runs: a sweep said
    none of them, so `protocol.name=fedavg,tally client_storage=auto` over 10^5 clients stacked tally's
    10^5 models without the line a single run prints, and the sweep's O(P) draw went unmentioned."""
    from tallysim.fields import first_few
    named: dict[str, list[str]] = {}
    for (name, _), cfg in zip(runs, cfgs):
        for note in [*run_notes(cfg), *filter(None, [stateful_note(cfg)])]:
            named.setdefault(note, []).append(name)
    return [f"sweep run {first_few(names, 2)}: {note}" for note, names in named.items()]
