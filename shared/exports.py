"""A job's draws and results in the formats other tools read: JSON lines, CSV and Parquet.

Everything is produced page by page (``PAGE`` draws of one prompt per Redis round trip, or
per archive read once the job is archived: shared/draws.py), so the
memory an export needs does not grow with the job: a 1,000 x 1,024 job is never held whole.
Parquet is written row group by row group to a file (its footer comes last), then streamed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.draws import JobDraws
from shared.schemas import JobResults, PromptResult
from shared.store import JobRecord, Store

PAGE = 1024

Scalar = str | int | float | bool | None


def iter_draws(store: Store, job: JobRecord) -> Iterator[list[tuple[str, int, str, float | None]]]:
    """Pages of (prompt id, sample index, text, score) in prompt order, then index order.
    Indices without a stored draw (a cancelled job) are skipped."""
    n = job.spec.sampling.n
    draws = JobDraws(store, job)
    for prompt_index, prompt in enumerate(job.spec.prompts):
        for start in range(0, n, PAGE):
            indices = list(range(start, min(start + PAGE, n)))
            texts, scores = draws.page(prompt_index, indices)
            page = [
                (prompt.id, i, t, s)
                for i, t, s in zip(indices, texts, scores, strict=True)
                if t is not None
            ]
            if page:
                yield page


def samples_jsonl(store: Store, job: JobRecord) -> Iterator[bytes]:
    """One JSON object per draw and line: prompt_id, index, text, score."""
    for page in iter_draws(store, job):
        yield "".join(
            json.dumps({"prompt_id": p, "index": i, "text": t, "score": s}, ensure_ascii=False)
            + "\n"
            for p, i, t, s in page
        ).encode("utf-8")


def _flatten(prefix: str, value: Any, out: dict[str, Scalar]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def _flatten_bounds(prefix: str, bounds: dict[str, Any], row: dict[str, Scalar]) -> None:
    for key, value in bounds.items():
        if key == "survival":
            for item in value:
                row[f"{prefix}.survival[x={item['x']:g}].upper"] = item["upper"]
        elif key == "quantiles":
            for item in value:
                row[f"{prefix}.quantiles[q={item['q']:g}].upper"] = item["upper"]
        elif key == "binary" and value is None:
            for inner in ("k", "lower", "upper"):
                row[f"{prefix}.binary.{inner}"] = None
        else:
            _flatten(f"{prefix}.{key}", value, row)


def flat_result(prompt: PromptResult) -> dict[str, Scalar]:
    """One prompt's result as flat columns: ``bounds.expectation.upper``; survival and
    quantile bounds keyed by their threshold, ``bounds.survival[x=0.5].upper``. Bounds that do
    not apply to the row (``binary`` on non-0/1 scores) are null. An adaptive job's row has
    ``sequential.*`` columns instead (``sequential.anytime.*`` flattened the same way)."""
    data = prompt.model_dump(mode="json", by_alias=True)
    bounds = data.pop("bounds")
    sequential = data.pop("sequential", None)
    row: dict[str, Scalar] = {}
    greedy = data.pop("greedy")
    _flatten("", data, row)
    row["greedy.text"] = greedy["text"] if greedy else None
    row["greedy.score"] = greedy["score"] if greedy else None
    if bounds is not None:
        _flatten_bounds("bounds", bounds, row)
    if sequential is not None:
        anytime = sequential.pop("anytime")
        sequential["omitted"] = "; ".join(sequential["omitted"])
        _flatten("sequential", sequential, row)
        _flatten_bounds("sequential.anytime", anytime, row)
    return row


def result_rows(results: JobResults) -> tuple[list[str], list[dict[str, Scalar]]]:
    """Column names (the union, in first-seen order) and one flat row per prompt."""
    rows = [flat_result(p) for p in results.prompts]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns), rows


def results_csv(results: JobResults) -> str:
    """The results table as CSV (a header, then one row per prompt; null is an empty cell)."""
    columns, rows = result_rows(results)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return out.getvalue()


def _csv_cell(value: Scalar) -> Scalar:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return "" if value is None else value


def write_draws_parquet(store: Store, job: JobRecord, path: Path) -> None:
    """The draws table (prompt_id, index, text, score) as Parquet, one row group per page."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("prompt_id", pa.string()),
            ("index", pa.int64()),
            ("text", pa.string()),
            ("score", pa.float64()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        wrote = False
        for page in iter_draws(store, job):
            columns = list(zip(*page, strict=True))
            writer.write_table(pa.Table.from_arrays([list(c) for c in columns], schema=schema))
            wrote = True
        if not wrote:
            writer.write_table(schema.empty_table())


def write_results_parquet(results: JobResults, path: Path) -> None:
    """The results table: one row per prompt, the bounds flattened into columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, rows = result_rows(results)
    table = pa.Table.from_pylist(
        [{c: row.get(c) for c in columns} for row in rows] if rows else [],
        schema=None if rows else pa.schema([("id", pa.string())]),
    )
    table = table.replace_schema_metadata(
        {
            "probeval.job_id": results.id,
            "probeval.alpha": repr(results.alpha),
            "probeval.source_job": results.source_job or "",
            "probeval.assumptions": results.assumptions,
        }
    )
    pq.write_table(table, path)
