"""The scorer worker: scores draws, then computes a finished job's results."""
