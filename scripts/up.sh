#!/usr/bin/env bash
# Install what Feiyun needs, build it, put the `feiyun` command on PATH (/usr/local/bin, or
# FEIYUN_BIN_DIR), and run a one-machine region in the foreground.
# Extra arguments go to `feiyun up` (e.g. --listen 0.0.0.0:8080 --config region.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p feiyun
BIN_DIR="${FEIYUN_BIN_DIR:-/usr/local/bin}"
if install -D -m 0755 target/release/feiyun "$BIN_DIR/feiyun" 2>/dev/null; then
    echo "Installed the feiyun command as $BIN_DIR/feiyun" >&2
    FEIYUN="$BIN_DIR/feiyun"
else
    echo "Cannot write $BIN_DIR; call the command as $(pwd)/target/release/feiyun" >&2
    FEIYUN=target/release/feiyun
fi
exec "$FEIYUN" up --data-dir "${FEIYUN_DATA_DIR:-/var/lib/feiyun}" "$@"
