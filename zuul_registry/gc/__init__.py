"""Parts of garbage collection; zuul_registry/prune.py runs them and
states the invariant they keep."""
