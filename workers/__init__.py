"""RQ worker processes: the sampler (owns the engine) and the scorer (CPU only)."""
