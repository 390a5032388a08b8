"""The vmapped simulation's building blocks: data on device, peers, local training, the vote, sparse
merges, bit costs, evaluation, models, faults, the lane (run) axis and the device mesh.

Layering: modules here import only each other and the layer below (`tallysim.config`,
`tallysim.sizing`, `tallysim.validation`, `tallysim.data`), never what is built on top of them
(`tallysim.protocols`, `run`, `sweep`, `cli`, figures and plots, the bench tools);
tests/test_hygiene.py checks this. Importing this package imports nothing.
"""
