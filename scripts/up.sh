#!/usr/bin/env bash
# Install what Feiyun needs, build it, and run a one-machine region in the foreground.
# Extra arguments go to `feiyun up` (e.g. --listen 0.0.0.0:8080 --config region.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p feiyun
exec target/release/feiyun up --data-dir "${FEIYUN_DATA_DIR:-/var/lib/feiyun}" "$@"
