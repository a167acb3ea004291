#!/usr/bin/env bash
# moto (the AWS emulator) for the AWS Secrets Manager provider tests and benchmark: PyPI
# `moto[server]` provides `moto_server`; the test run starts its own servers on loopback.
# Pinned to the version the tests were checked with (see docs/providers.md, "Testing against moto").
set -euo pipefail
MOTO_VERSION=5.2.1
installed="$(python3 -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true)"
if command -v moto_server >/dev/null 2>&1 && [ "$installed" = "$MOTO_VERSION" ]; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check "moto[server]==${MOTO_VERSION}"
# pyenv installs console scripts behind shims that appear only after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
if ! command -v moto_server >/dev/null 2>&1; then
  bin="$(python3 -c 'import sys, os; print(os.path.join(os.path.dirname(sys.executable), "moto_server"))')"
  ln -sf "$bin" /usr/local/bin/moto_server
fi
command -v moto_server
