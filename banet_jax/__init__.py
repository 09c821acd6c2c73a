"""banet-jax: BANet and ODAH in JAX."""
