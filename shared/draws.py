"""A job's draws, scores, greedy and rendered texts and results, wherever they are: in Redis
while the job is live and until it is archived, in its archive afterwards (shared/archive.py).

Every Redis read here runs in one MULTI with a read of the record's ``archive`` field. The
archiving task records the archive before it deletes the Redis copy, so a read that sees no
archive saw complete Redis data, and a read that sees one (the job was archived meanwhile, even
in the middle of an export) is served from the archive, which holds the same data: a reader
never sees a half-deleted job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared import keys
from shared.archive_reader import ArchivedJob
from shared.schemas import GreedyResult, JobResults
from shared.store import JobRecord, Store


class JobDraws:
    """Reads of one job's stored data (see the module docstring)."""

    def __init__(self, store: Store, job: JobRecord) -> None:
        self.store = store
        self.job = job
        self.options = store.archive_options
        self._archive: ArchivedJob | None = None
        if job.archive:
            self._archive = ArchivedJob.open(job.archive, self.options)

    @property
    def archived(self) -> ArchivedJob | None:
        return self._archive

    def _redis(self, *commands: tuple[str, tuple[Any, ...]]) -> list[Any] | None:
        """The replies to ``commands`` read atomically with the record's archive field, or None
        when the job has been archived (the archive is then opened and used from now on)."""
        pipe = self.store.r.pipeline(transaction=True)
        pipe.hget(keys.job(self.job.id), "archive")
        for name, args in commands:
            getattr(pipe, name)(*args)
        replies = pipe.execute()
        if replies[0]:
            self._archive = ArchivedJob.open(str(replies[0]), self.options)
            return None
        return list(replies[1:])

    def page(
        self, prompt_index: int, indices: Sequence[int]
    ) -> tuple[list[str | None], list[float | None]]:
        """Texts and scores at ``indices`` of one prompt (None where nothing is stored)."""
        if not indices:
            return [], []
        if self._archive is None:
            fields = [str(i) for i in indices]
            replies = self._redis(
                ("hmget", (keys.job_texts(self.job.id, prompt_index), fields)),
                ("hmget", (keys.job_scores(self.job.id, prompt_index), fields)),
            )
            if replies is not None:
                texts = [None if v is None else str(v) for v in replies[0]]
                scores = [None if v is None else float(v) for v in replies[1]]
                return texts, scores
        assert self._archive is not None
        return self._archive.page(prompt_index, indices)

    def count(self, prompt_index: int) -> int:
        if self._archive is None:
            replies = self._redis(("hlen", (keys.job_texts(self.job.id, prompt_index),)))
            if replies is not None:
                return int(replies[0])
        assert self._archive is not None
        return self._archive.count(prompt_index)

    def all_scores(self, prompt_index: int) -> dict[int, float]:
        if self._archive is None:
            replies = self._redis(("hgetall", (keys.job_scores(self.job.id, prompt_index),)))
            if replies is not None:
                return {int(k): float(v) for k, v in replies[0].items()}
        assert self._archive is not None
        return self._archive.all_scores(prompt_index)

    def rendered_prompt(self, prompt_index: int) -> str | None:
        if self._archive is None:
            replies = self._redis(
                ("hget", (keys.job_rendered_prompts(self.job.id), str(prompt_index)))
            )
            if replies is not None:
                return None if replies[0] is None else str(replies[0])
        assert self._archive is not None
        return self._archive.rendered_prompt(prompt_index)

    def rendered_prompts(self) -> dict[int, str]:
        if self._archive is None:
            replies = self._redis(("hgetall", (keys.job_rendered_prompts(self.job.id),)))
            if replies is not None:
                return {int(k): str(v) for k, v in replies[0].items()}
        assert self._archive is not None
        return self._archive.rendered_prompts()

    def greedy(self) -> dict[int, GreedyResult]:
        if self._archive is None:
            replies = self._redis(("hgetall", (keys.job_greedy(self.job.id),)))
            if replies is not None:
                return {int(k): GreedyResult.model_validate_json(v) for k, v in replies[0].items()}
        assert self._archive is not None
        return self._archive.greedy()

    def results(self) -> JobResults | None:
        """The stored results (None when the job has none stored)."""
        if self._archive is None:
            replies = self._redis(("get", (keys.job_results(self.job.id),)))
            if replies is not None:
                return JobResults.model_validate_json(replies[0]) if replies[0] else None
        assert self._archive is not None
        return self._archive.results()
