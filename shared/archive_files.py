"""Where a job's archive lives and what its files hold: the layout both the writer
(shared/archive.py) and the readers (shared/archive_reader.py) follow.

A job's archive is a folder ``<PROBEVAL_ARCHIVE_URL>/<job id>/`` on any fsspec filesystem:

- ``draws.parquet``: one row per stored draw (prompt_index, prompt_id, index, text, score),
  zstd, **one row group per prompt** in prompt order (a prompt without draws has an empty one),
  rows in sample-index order. A page of one prompt reads one row group, never the file.
- ``prompts.parquet``: one row per prompt: its rendered prompt, greedy text and greedy result
  (what exists), and how many draws it has.
- ``results.parquet``: the job's results (when it has any): one row per prompt holding that
  prompt's result as JSON, the rest of the results in the file's metadata, so that the results
  read back are exactly those Redis held.
- ``manifest.json``: written last; row counts, the score checksum, when the archive expires.

Files are written under a temporary folder ``.tmp-<uuid>/`` and moved into place; the job record
names the folder only after the files read back verified (shared/archive.py).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

DRAWS = "draws.parquet"
PROMPTS = "prompts.parquet"
RESULTS = "results.parquet"
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
RESULTS_HEAD = b"probeval.results"  # Parquet metadata key: the results without their prompts
COMPRESSION = "zstd"


def filesystem(url: str, options: Mapping[str, Any]) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` and the path on it (a plain folder is a local path)."""
    fs, path = fsspec.core.url_to_fs(url, **dict(options))
    return fs, str(path).rstrip("/")


def job_folder(base_url: str, job_id: str) -> str:
    """The URL of the job's archive folder, as it is recorded in the job record."""
    return posixpath.join(base_url.rstrip("/"), job_id)


def draws_schema() -> Any:
    """The Arrow schema of ``draws.parquet``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("prompt_index", pa.int32()),
            ("prompt_id", pa.string()),
            ("index", pa.int32()),
            ("text", pa.string()),
            ("score", pa.float64()),
        ]
    )


def prompts_schema() -> Any:
    """The Arrow schema of ``prompts.parquet``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("prompt_index", pa.int32()),
            ("prompt_id", pa.string()),
            ("draws", pa.int64()),
            ("rendered_prompt", pa.string()),
            ("greedy_text", pa.string()),
            ("greedy", pa.string()),  # GreedyResult JSON
        ]
    )


class ScoreChecksum:
    """SHA-256 over every draw's (prompt index, sample index, score) in file order; a missing
    score hashes as NaN. The writer computes it from what it read in Redis, the verifier from
    the file it wrote."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(
        self, prompt_index: int, indices: Iterable[int], scores: Iterable[float | None]
    ) -> None:
        import numpy as np

        idx = np.asarray(list(indices), dtype="<i8")
        values = np.asarray([float("nan") if s is None else s for s in scores], dtype="<f8")
        self._h.update(np.int64(prompt_index).tobytes())
        self._h.update(idx.tobytes())
        self._h.update(values.tobytes())

    def hexdigest(self) -> str:
        return self._h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` records of one job's archive."""

    job_id: str
    status: str
    draws: int
    draws_per_prompt: list[int]
    scores_sha256: str
    has_results: bool
    written_at: float
    expires_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        return cls(**json.loads(text))
