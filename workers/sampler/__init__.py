"""The sampler worker: loads the generation engine once and serves its model's queue."""
