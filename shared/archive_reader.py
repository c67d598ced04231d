"""Reading a job's archive (layout: shared/archive_files.py). A page of one prompt reads that
prompt's row group of three columns, never the whole file; the Parquet footers and the small
per-prompt table are read once per process and archive (archives never change once recorded).
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from shared.archive_files import (
    DRAWS,
    MANIFEST,
    PROMPTS,
    RESULTS,
    RESULTS_HEAD,
    Manifest,
    ScoreChecksum,
    filesystem,
)
from shared.schemas import GreedyResult, JobResults

_CACHE_SIZE = 32
_cache: OrderedDict[str, ArchivedJob] = OrderedDict()
_cache_lock = threading.Lock()


class ArchivedJob:
    """One job's archive folder, opened for reading."""

    def __init__(self, location: str, options: Mapping[str, Any]) -> None:
        import pyarrow.parquet as pq

        self.location = location
        self.fs, self.folder = filesystem(location, options)
        with self.fs.open(self._path(MANIFEST), "rb") as f:
            self.manifest = Manifest.from_json(f.read())
        with self.fs.open(self._path(DRAWS), "rb") as f:
            self._draws_meta = pq.ParquetFile(f).metadata
        with self.fs.open(self._path(PROMPTS), "rb") as f:
            self._prompts = pq.read_table(f).to_pylist()

    @classmethod
    def open(cls, location: str, options: Mapping[str, Any], *, cache: bool = True) -> ArchivedJob:
        if not cache:
            return cls(location, options)
        with _cache_lock:
            found = _cache.get(location)
            if found is not None:
                _cache.move_to_end(location)
                return found
        opened = cls(location, options)
        with _cache_lock:
            _cache[location] = opened
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return opened

    def _path(self, name: str) -> str:
        return posixpath.join(self.folder, name)

    def _row_group(self, prompt_index: int, columns: Sequence[str]) -> Any:
        import pyarrow.parquet as pq

        with self.fs.open(self._path(DRAWS), "rb") as f:
            return pq.ParquetFile(f, metadata=self._draws_meta).read_row_group(
                prompt_index, columns=list(columns)
            )

    # ---- draws -------------------------------------------------------------------------------

    def draws_per_prompt(self) -> list[int]:
        meta = self._draws_meta
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]

    def count(self, prompt_index: int) -> int:
        return int(self._draws_meta.row_group(prompt_index).num_rows)

    def page(
        self, prompt_index: int, indices: Sequence[int]
    ) -> tuple[list[str | None], list[float | None]]:
        """Texts and scores at ``indices`` (None where no draw is stored)."""
        if not indices:
            return [], []
        table = self._row_group(prompt_index, ["index", "text", "score"])
        stored = table.column("index").to_numpy()
        # Rows are in index order: only the slice that can hold the wanted indices is converted.
        lo = int(stored.searchsorted(min(indices), side="left"))
        hi = int(stored.searchsorted(max(indices), side="right"))
        part = table.slice(lo, hi - lo)
        found = {
            int(i): (t, s)
            for i, t, s in zip(
                part.column("index").to_pylist(),
                part.column("text").to_pylist(),
                part.column("score").to_pylist(),
                strict=True,
            )
        }
        texts = [found[i][0] if i in found else None for i in indices]
        scores = [found[i][1] if i in found else None for i in indices]
        return texts, scores

    def texts(self, prompt_index: int) -> dict[int, str]:
        table = self._row_group(prompt_index, ["index", "text"])
        return dict(
            zip(table.column("index").to_pylist(), table.column("text").to_pylist(), strict=True)
        )

    def all_scores(self, prompt_index: int) -> dict[int, float]:
        table = self._row_group(prompt_index, ["index", "score"])
        return {
            int(i): float(s)
            for i, s in zip(
                table.column("index").to_pylist(), table.column("score").to_pylist(), strict=True
            )
            if s is not None
        }

    def scores_checksum(self) -> str:
        checksum = ScoreChecksum()
        for p in range(self._draws_meta.num_row_groups):
            table = self._row_group(p, ["index", "score"])
            checksum.update(p, table.column("index").to_pylist(), table.column("score").to_pylist())
        return checksum.hexdigest()

    # ---- per prompt ----------------------------------------------------------------------------

    def rendered_prompt(self, prompt_index: int) -> str | None:
        value = self._prompts[prompt_index]["rendered_prompt"]
        return None if value is None else str(value)

    def rendered_prompts(self) -> dict[int, str]:
        return {
            int(r["prompt_index"]): str(r["rendered_prompt"])
            for r in self._prompts
            if r["rendered_prompt"] is not None
        }

    def greedy_texts(self) -> dict[int, str]:
        return {
            int(r["prompt_index"]): str(r["greedy_text"])
            for r in self._prompts
            if r["greedy_text"] is not None
        }

    def greedy(self) -> dict[int, GreedyResult]:
        return {
            int(r["prompt_index"]): GreedyResult.model_validate_json(r["greedy"])
            for r in self._prompts
            if r["greedy"] is not None
        }

    # ---- results ---------------------------------------------------------------------------------

    def results(self) -> JobResults | None:
        """The results exactly as Redis held them (None for a job archived without any)."""
        import pyarrow.parquet as pq

        if not self.manifest.has_results:
            return None
        with self.fs.open(self._path(RESULTS), "rb") as f:
            table = pq.read_table(f)
        head = json.loads((table.schema.metadata or {})[RESULTS_HEAD])
        head["prompts"] = [json.loads(r) for r in table.column("result").to_pylist()]
        return JobResults.model_validate(head)
