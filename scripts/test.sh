#!/usr/bin/env bash
# The whole test suite: formatting and lints, unit and integration tests (real runc containers),
# then the end-to-end suite that drives the real binary with the official Alibaba Cloud SDKs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== unit and integration tests"
cargo test --workspace -q
echo "== end-to-end (official SDKs against the real binary)"
cargo build -q -p feiyun
tests/e2e/run.sh
