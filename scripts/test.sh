#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate, with every feature
# (`aws`: the AWS backend, tested against moto).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --all-features --locked
# the wiring without the aws feature: a build that leaves the SDK out says how to get it
cargo test -p meridian-wiring --locked
