"""The vmapped simulation's building blocks: data on device, peers, local training, the vote, sparse
merges, bit costs, evaluation, models, faults, the lane (run) axis and the device mesh.

Layering: modules here import only each other and the layer beneath (`tallysim.config`,
`tallysim.sizing`, `tallysim.validation`, `tallysim.data`), never what is built on top of them
(`tallysim.protocols`, `run`, `sweep`, `cli`, figures and plots, the bench tools);
tests/test_hygiene.py checks this. Importing this package imports nothing.

Shape letters, project-wide. An array's name ends in its axes, `_` then letters joined by `x`
(`count_P` is [P], `logits_cxMxC` is [c, M, C]); docstrings and comments write shapes the same
way ([A, M, C]). Each letter means one thing everywhere in tallysim, its tests and benchmarks:

  A  active peers: the peers that take part in a round (train, vote, send); A <= P
  B  a minibatch of examples: a private training batch, an evaluation batch, FedDF's probe batch
  C  classes (the logits' width)
  D  features of one flattened example
  E  epochs
  G  groups of peers in ragged local training (local.train_peers)
  H  held examples: every peer's shard end to end, one flat index array (`FedData.shard_H`; the sum
     of the shard sizes, padded to the largest such sum over the seeds); peer p's indices start at
     `offset_P[p]`, and fed.cohort_shards gathers a cohort's as [A, S]
  K  entries one peer sends (sparse top-k)
  M  probes per round
  N  training examples (the whole training set)
  P  peers (all of them)
  Q  probe-pool size (the public pool the M probes are drawn from)
  R  probe minibatch, beside a private minibatch B in a distillation step
  S  the largest shard (examples of one peer; a gathered cohort's shards are padded to it, [A, S])
  T  steps along a scan: local training's optimizer steps; run.py's rounds of one compiled chunk
  V  test examples (what evaluation runs on)
  W  parameters of one model, flattened (|W|)
  Z  lanes: the run axis, one per (configuration, seed) compiled together (lanes.py)

Lower case counts a block inside a larger axis, or is spelled out where a capital would clash:
  c  peers per chunk (the chunked exchange and vote), n  chunks
  g  peers per group (G groups of g)
  h, w, ch  an image's height, width and channels ([B, h, w, ch]); ch_in, ch_out of a conv kernel
  seg  segments of a flattened model (per-tensor top-k: one per leaf)

Not an axis: L = ceil(log2 C), the bits of one hard label, is a scalar in bit costs (comm.py,
docs/protocols.md). Single letters as loop indices (t, i, p) carry no shape meaning.
"""
