"""The models probeval ships, found through the installed package, not the source tree.

``probeval/models`` is a link to the repository's ``models/`` folder; building the wheel copies
the folders in as package data, so ``shipped_model()`` is the same call in a checkout (editable
install, ``PYTHONPATH``) and in a wheel installed anywhere.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULT_MODEL = "tiny-unlearned"


def shipped_model(name: str = DEFAULT_MODEL) -> Path:
    """The folder of a shipped model (Hugging Face layout plus its questions.json)."""
    return Path(str(files("probeval") / "models" / name))
