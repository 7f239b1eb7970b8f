#!/usr/bin/env bash
# Installs everything the test suite and the demo need on a fresh machine of this project's kind:
# the Rust components (rustfmt, clippy), and the third-party test peers in a Python virtualenv at
# .venv (pinned in scripts/test-peers/requirements.txt), and moto in .venv-moto
# (scripts/test-peers/requirements-moto.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if [ -f scripts/test-peers/requirements.txt ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/test-peers/requirements.txt
fi
# moto's server, the stand-in for AWS, in its own virtualenv (its pins differ from the oracle's)
if [ -f scripts/test-peers/requirements-moto.txt ]; then
  if [ ! -x .venv-moto/bin/python ]; then
    python3 -m venv .venv-moto
  fi
  .venv-moto/bin/pip install --quiet --disable-pip-version-check -r scripts/test-peers/requirements-moto.txt
fi
