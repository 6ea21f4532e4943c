#!/usr/bin/env bash
# The whole test suite: formatting and lints, unit and integration tests (real runc containers),
# then the end-to-end suite that drives the real binary with the official Alibaba Cloud SDKs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
# A one-off build gains nothing from incremental compilation's caches, which took a third of the
# target directory's disk.
export CARGO_INCREMENTAL=0
# A clean run takes about 3 GB (build, virtualenv, instances' files); say what there is, so a run
# that fills the disk says so at its top.
echo "== disk free where the suite runs: $(df -h --output=avail . | tail -1 | tr -d ' ') (a clean run needs about 3 GB)"
echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== unit and integration tests"
# Each Rust test that runs containers puts them under a parent cgroup of its own
# (`feiyun-test-*`) and removes it when it is done, passed or failed. A test killed before its
# clean-up ran leaves its parent: those are removed here (rmdir removes only an empty one; one
# that was here before the suite stays) and named, since it means a test did not finish.
test_cgroups_before=$(find /sys/fs/cgroup -maxdepth 2 -type d -name 'feiyun-test*' 2>/dev/null | sort || true)
remove_test_cgroups() {
    local d
    for d in $(find /sys/fs/cgroup -maxdepth 2 -type d -name 'feiyun-test*' 2>/dev/null); do
        if ! grep -qxF "$d" <<<"$test_cgroups_before" && rmdir "$d" 2>/dev/null; then
            echo "removed a test's leftover cgroup: $d" >&2
        fi
    done
}
trap remove_test_cgroups EXIT
cargo test --workspace -q
remove_test_cgroups
echo "== end-to-end (official SDKs against the real binary)"
cargo build -q -p feiyun
tests/e2e/run.sh
