"""The floor for bench/gateway.py: a bare FastAPI + pydantic + redis.asyncio service.

    .venv/bin/python bench/bare_gateway.py --port 8001 --redis-url redis://127.0.0.1:6380/0

POST /v1/jobs validates the body with the same pydantic schema as probeval (``JobCreate``),
stores it in one hash and pushes the new id on a list (one pipelined round trip) and answers 202;
GET /v1/jobs/{id} reads two fields of that hash (one round trip) into a pydantic model. No auth,
no quota, no chunk plan, no RQ: what any FastAPI service that stores a request costs on this
machine. GET /ping answers without Redis (the load generator's ceiling). Served by one uvicorn
process with uvicorn's defaults (uvloop and httptools when installed) and probeval's log
options. Its loop stays uvloop, the faster one, whatever ``PROBEVAL_GATEWAY_LOOP`` gives
probeval (asyncio by default), so the floor is not lowered with it.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from shared.schemas import JobCreate

PREFIX = "bare"


class Accepted(BaseModel):
    id: str
    status: str


class View(BaseModel):
    id: str
    model: str
    status: str


def create_app(redis_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.r = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        try:
            yield
        finally:
            await app.state.r.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/jobs", status_code=202)
    async def submit(body: JobCreate, request: Request) -> Accepted:
        job_id = uuid.uuid4().hex
        pipe = request.app.state.r.pipeline(transaction=False)
        pipe.hset(
            f"{PREFIX}:job:{job_id}",
            mapping={"spec": body.model_dump_json(), "model": body.model, "status": "queued"},
        )
        pipe.lpush(f"{PREFIX}:queue", job_id)
        await pipe.execute()
        return Accepted(id=job_id, status="queued")

    @app.get("/v1/jobs/{job_id}")
    async def poll(job_id: str, request: Request) -> View:
        model, status = await request.app.state.r.hmget(
            f"{PREFIX}:job:{job_id}", ["model", "status"]
        )
        if status is None:
            raise HTTPException(404, "no such job")
        return View(id=job_id, model=str(model), status=str(status))

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.redis_url),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,  # as probeval gateway
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
