"""Moving a finished job's draws and results from Redis to its Parquet archive.

The steps, each safe to crash after (the task is re-run by RQ, or by hand, and is idempotent):

1. write every file under ``<job>/.tmp-<uuid>/`` from what Redis holds, computing the row
   counts and the score checksum as it goes;
2. move the files to their names in ``<job>/`` (a rename on a local folder; a whole-object
   copy on an object store), ``manifest.json`` last;
3. read the moved files back and compare their row counts, score checksum and results with
   what was written (``ArchiveMismatch`` otherwise: nothing is recorded, Redis keeps the draws);
4. record the folder in the job record by compare-and-set (only a record that exists and names
   no archive yet), so readers switch to it (shared/draws.py);
5. only then delete the job's draw keys from Redis.

A crash before 4 leaves the Redis copy whole (and perhaps a complete, unrecorded folder that the
re-run overwrites with the same content); after 4, a complete archive, and the re-run only
finishes step 5. Files under ``.tmp-*`` that a crash left are removed by the re-run, or by the
retention sweep (shared/archive_retention.py).
"""

from __future__ import annotations

import posixpath
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared import keys
from shared.archive_files import (
    COMPRESSION,
    DRAWS,
    MANIFEST,
    PROMPTS,
    RESULTS,
    RESULTS_HEAD,
    TMP_PREFIX,
    Manifest,
    ScoreChecksum,
    draws_schema,
    filesystem,
    job_folder,
    prompts_schema,
)
from shared.archive_reader import ArchivedJob
from shared.errors import ProbevalError
from shared.schemas import JobResults
from shared.store import CHUNK_IDS_FIELD, JobRecord, Store

# Record the archive only on a record that exists and names none yet. KEYS[1] the record;
# ARGV: location, archived_at, draws, scores sha256. Returns 1 recorded, 0 already archived
# (to this location or another), -1 no record (expired or purged meanwhile).
RECORD_ARCHIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'archive') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'archive', ARGV[1], 'archived_at', ARGV[2],
  'archive_draws', ARGV[3], 'archive_scores_sha256', ARGV[4])
return 1
"""


class ArchiveMismatch(ProbevalError):
    """What was read back from the archive differs from what was written (nothing recorded)."""


@dataclass(frozen=True)
class ArchiveOutcome:
    """What ``archive_job`` did: ``recorded`` now, ``already`` archived, or ``gone``."""

    state: str
    location: str
    draws: int = 0
    deleted_keys: int = 0


def draw_keys(job: JobRecord) -> list[str]:
    """The Redis keys an archived job no longer needs: its draws, scores, greedy and rendered
    texts, results, adaptive state and chunk plan. Its record stays (``Store.chunk_ids`` then
    reads the chunk ids, which a purge needs to find the job's RQ records, from it)."""
    names = [keys.job_texts(job.id, p) for p in range(len(job.spec.prompts))]
    names += [keys.job_scores(job.id, p) for p in range(len(job.spec.prompts))]
    names += [
        keys.job_greedy(job.id),
        keys.job_greedy_texts(job.id),
        keys.job_rendered_prompts(job.id),
        keys.job_results(job.id),
        keys.job_streams(job.id),
        keys.job_chunks_enqueued(job.id),
        keys.job_chunks_scored(job.id),
        keys.job_chunks(job.id),
    ]
    return names


def delete_draw_keys(store: Store, job: JobRecord) -> int:
    """Step 5: delete ``draw_keys`` (the chunk ids kept in the record first); returns how many
    keys were deleted."""
    plan_ids = [str(c) for c in store.r.hkeys(keys.job_chunks(job.id))]
    if plan_ids:  # a re-run finds the plan gone and the ids kept
        store.r.hset(keys.job(job.id), CHUNK_IDS_FIELD, ",".join(sorted(plan_ids, key=int)))
    names = draw_keys(job)
    deleted = 0
    for start in range(0, len(names), 500):
        deleted += int(store.r.delete(*names[start : start + 500]))
    return deleted


def _write_files(
    store: Store, job: JobRecord, results: JobResults | None, fs: Any, tmp: str, expires_at: float
) -> Manifest:
    import pyarrow as pa
    import pyarrow.parquet as pq

    checksum = ScoreChecksum()
    per_prompt: list[int] = []
    schema = draws_schema()
    with (
        fs.open(posixpath.join(tmp, DRAWS), "wb") as f,
        pq.ParquetWriter(f, schema, compression=COMPRESSION, use_dictionary=["prompt_id"]) as w,
    ):
        for p, prompt in enumerate(job.spec.prompts):
            texts = store.r.hgetall(keys.job_texts(job.id, p))
            scores = store.r.hgetall(keys.job_scores(job.id, p))
            indices = sorted(int(i) for i in texts)
            values = [float(scores[str(i)]) if str(i) in scores else None for i in indices]
            checksum.update(p, indices, values)
            per_prompt.append(len(indices))
            table = pa.Table.from_arrays(
                [
                    pa.array([p] * len(indices), pa.int32()),
                    pa.array([prompt.id] * len(indices), pa.string()),
                    pa.array(indices, pa.int32()),
                    pa.array([texts[str(i)] for i in indices], pa.string()),
                    pa.array(values, pa.float64()),
                ],
                schema=schema,
            )
            # One row group per prompt, also an empty one: row group p is prompt p.
            w.write_table(table, row_group_size=max(1, len(indices)))
    rendered = store.rendered_prompts(job.id)
    greedy_texts = store.r.hgetall(keys.job_greedy_texts(job.id))
    greedy = store.r.hgetall(keys.job_greedy(job.id))
    prompts = pa.Table.from_pylist(
        [
            {
                "prompt_index": p,
                "prompt_id": prompt.id,
                "draws": per_prompt[p],
                "rendered_prompt": rendered.get(p),
                "greedy_text": greedy_texts.get(str(p)),
                "greedy": greedy.get(str(p)),
            }
            for p, prompt in enumerate(job.spec.prompts)
        ],
        schema=prompts_schema(),
    )
    with fs.open(posixpath.join(tmp, PROMPTS), "wb") as f:
        pq.write_table(prompts, f, compression=COMPRESSION)
    if results is not None:
        head = results.model_dump_json(by_alias=True, exclude={"prompts"}).encode()
        table = pa.Table.from_pylist(
            [
                {"prompt_id": r.id, "result": r.model_dump_json(by_alias=True)}
                for r in results.prompts
            ],
            schema=pa.schema([("prompt_id", pa.string()), ("result", pa.string())]),
        ).replace_schema_metadata({RESULTS_HEAD: head})
        with fs.open(posixpath.join(tmp, RESULTS), "wb") as f:
            pq.write_table(table, f, compression=COMPRESSION)
    return Manifest(
        job_id=job.id,
        status=job.status.value,
        draws=sum(per_prompt),
        draws_per_prompt=per_prompt,
        scores_sha256=checksum.hexdigest(),
        has_results=results is not None,
        written_at=time.time(),
        expires_at=expires_at,
    )


def verify(
    location: str, options: Mapping[str, Any], manifest: Manifest, results: JobResults | None
) -> None:
    """Read the archive back; ``ArchiveMismatch`` unless it holds exactly what was written."""
    archived = ArchivedJob.open(location, options, cache=False)
    if archived.manifest != manifest:
        raise ArchiveMismatch(f"{location}: manifest differs from the one written")
    counts = archived.draws_per_prompt()
    if counts != manifest.draws_per_prompt:
        raise ArchiveMismatch(
            f"{location}: row groups hold {counts}, wrote {manifest.draws_per_prompt}"
        )
    if archived.scores_checksum() != manifest.scores_sha256:
        raise ArchiveMismatch(f"{location}: the scores read back differ from those written")
    back = archived.results()
    if (back is None) != (results is None) or (
        back is not None
        and results is not None
        and back.model_dump_json(by_alias=True) != results.model_dump_json(by_alias=True)
    ):
        raise ArchiveMismatch(f"{location}: the results read back differ from those written")


def write_archive(
    store: Store,
    job: JobRecord,
    results: JobResults | None,
    base_url: str,
    options: Mapping[str, Any],
) -> tuple[str, Manifest]:
    """Steps 1-3: the job's complete, verified archive folder; returns its URL and manifest."""
    location = job_folder(base_url, job.id)
    fs, folder = filesystem(location, options)
    for stale in fs.glob(posixpath.join(folder, TMP_PREFIX + "*")):
        fs.rm(stale, recursive=True)  # a crashed earlier attempt's files
    tmp = posixpath.join(folder, f"{TMP_PREFIX}{uuid.uuid4().hex}")
    fs.makedirs(tmp, exist_ok=True)
    try:
        manifest = _write_files(
            store, job, results, fs, tmp, expires_at=job.created_at + store.retention_s
        )
        with fs.open(posixpath.join(tmp, MANIFEST), "w") as f:
            f.write(manifest.to_json())
        names = [DRAWS, PROMPTS, *([RESULTS] if results is not None else []), MANIFEST]
        if results is None and fs.exists(posixpath.join(folder, RESULTS)):
            fs.rm(posixpath.join(folder, RESULTS))
        for name in names:  # the manifest last: a folder with one is complete
            fs.mv(posixpath.join(tmp, name), posixpath.join(folder, name))
    finally:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
    verify(location, options, manifest, results)
    return location, manifest


def record_archive(store: Store, job_id: str, location: str, manifest: Manifest) -> int:
    """Step 4 (see ``RECORD_ARCHIVE`` for the replies)."""
    script = store.r.register_script(RECORD_ARCHIVE)
    return int(
        script(
            keys=[keys.job(job_id)],
            args=[location, repr(time.time()), manifest.draws, manifest.scores_sha256],
        )
    )
