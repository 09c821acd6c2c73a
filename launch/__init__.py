"""Entry points (absl apps) of banet-jax, run as ``python -m launch.<name>``."""
