"""The HTTP side: services never import worker code."""
