"""The ``shared`` package: what both the gateway (services) and the workers use."""
