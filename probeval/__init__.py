"""probeval: evaluate LLMs by their output distribution (CLI, local stack, demo)."""
