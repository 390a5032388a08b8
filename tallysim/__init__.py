"""tallysim: a JAX single-host simulator for communication-efficient federated learning."""
__version__ = "0.1.0"
