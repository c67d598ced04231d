"""`probeval worker sampler|scorer`: run one worker process."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any
from urllib.parse import urlsplit

from probeval.cli import UsageError
from shared.config import Settings, get_settings

MAX_CONCURRENCY = 1024  # the same bound as Settings.endpoint_concurrency


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(
            f"must be an integer from 1 to {MAX_CONCURRENCY}, got {text!r}"
        )
    return value


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """The ``worker`` flags of each kind: a vLLM or endpoint sampler, or a scorer."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    s = kinds.add_parser(
        "sampler",
        help="generate draws for one model: with vLLM in this process (--model) or by calling "
        "an OpenAI-compatible server (--endpoint)",
    )
    s.add_argument("--model", help="path of the model folder (Hugging Face format)")
    s.add_argument(
        "--endpoint",
        help="OpenAI-compatible server or router to call instead of loading a model, e.g. "
        "http://vllm-router:8000 (default: PROBEVAL_ENDPOINT_URL)",
    )
    s.add_argument(
        "--served-model",
        help="model name the endpoint serves, as /v1/models lists it "
        "(default: PROBEVAL_ENDPOINT_SERVED_MODEL)",
    )
    s.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the endpoint's API key "
        "(default: PROBEVAL_ENDPOINT_API_KEY_ENV, i.e. PROBEVAL_ENDPOINT_API_KEY)",
    )
    s.add_argument(
        "--concurrency",
        type=_concurrency,
        metavar="K",
        help=f"requests in flight to the endpoint, 1..{MAX_CONCURRENCY} "
        "(default: PROBEVAL_ENDPOINT_CONCURRENCY, 8)",
    )
    s.add_argument(
        "--name",
        help="name jobs use for this model (default: the folder's name, or the served model)",
    )
    s.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    c = kinds.add_parser("scorer", help="score draws and compute bounds")
    c.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    return p


def run(args: argparse.Namespace) -> int:
    """Run one worker process until it is stopped (or its queues are empty, ``--burst``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    if args.kind == "scorer":
        from workers.scorer.main import run_scorer

        run_scorer(settings, burst=args.burst)
        return 0

    endpoint = args.endpoint or (None if args.model else settings.endpoint_url)
    if args.model and endpoint:
        raise UsageError("probeval worker sampler: give --model or --endpoint, not both")
    if endpoint:
        return _run_endpoint_sampler(args, endpoint, settings)
    if not args.model:
        raise UsageError(
            "probeval worker sampler: give --model PATH (vLLM in this process) or "
            "--endpoint URL --served-model NAME (an OpenAI-compatible server)"
        )
    endpoint_only = [f for f in ("served_model", "api_key_env", "concurrency") if getattr(args, f)]
    if endpoint_only:
        flag = "--" + endpoint_only[0].replace("_", "-")
        raise UsageError(f"probeval worker sampler: {flag} needs --endpoint")
    if not os.path.isdir(args.model):
        raise UsageError(f"probeval worker sampler: --model {args.model!r} is not a folder")
    from workers.sampler.main import SamplerExit, run_sampler

    try:
        return run_sampler(args.model, args.name, settings, burst=args.burst)
    except SamplerExit as exc:
        print(f"probeval worker sampler: {exc}", file=sys.stderr)
        return 1


def _run_endpoint_sampler(args: argparse.Namespace, endpoint: str, settings: Settings) -> int:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"probeval worker sampler: --endpoint must be an http:// or https:// URL, "
            f"got {endpoint!r}"
        )
    served = args.served_model or settings.endpoint_served_model
    if not served:
        raise UsageError(
            "probeval worker sampler: --endpoint needs --served-model NAME "
            "(the model's id in the endpoint's /v1/models)"
        )
    if args.concurrency is not None:
        settings = settings.model_copy(update={"endpoint_concurrency": args.concurrency})
    key = settings.endpoint_api_key(args.api_key_env)
    from workers.sampler.main import SamplerExit, run_endpoint_sampler
    from workers.sampler.openai_engine import EndpointConfig

    config = EndpointConfig.from_settings(settings, url=endpoint, served_model=served, api_key=key)
    # httpx logs every request at INFO: thousands a minute from a busy endpoint sampler (a judge
    # makes two per draw to render it). Failures are logged by the engine itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        run_endpoint_sampler(config, args.name, settings, burst=args.burst)
    except SamplerExit as exc:
        print(f"probeval worker sampler: {exc}", file=sys.stderr)
        return 1
    return 0
