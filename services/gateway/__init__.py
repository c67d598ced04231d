"""The FastAPI gateway: `main.create_app` builds it."""
