#!/usr/bin/env bash
# Installs everything the test suite and the demo need on a fresh machine of this project's kind:
# the Rust components (rustfmt, clippy), and the third-party test peers in a Python virtualenv at
# .venv (pinned in scripts/test-peers/requirements.txt), and moto in .venv-moto
# (scripts/test-peers/requirements-moto.txt), and the SAM CLI in .venv-sam
# (scripts/test-peers/requirements-sam.txt). The demo needs none of them.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# Each virtualenv is created if missing and brought to its pinned requirements. The two install
# side by side (pip spends its time on one core each).
venv() {
  local dir=$1 req=$2
  [ -f "$req" ] || return 0
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
}
# the test peers and the SAM oracle
venv .venv scripts/test-peers/requirements.txt &
peers=$!
# moto's server, the stand-in for AWS, in its own virtualenv (its pins differ from the oracle's)
venv .venv-moto scripts/test-peers/requirements-moto.txt &
moto=$!
# the SAM CLI, a client of the local endpoint (its own pins of boto3 and aws-sam-translator)
venv .venv-sam scripts/test-peers/requirements-sam.txt &
sam=$!
wait "$peers"
wait "$moto"
wait "$sam"
