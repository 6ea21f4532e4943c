#!/usr/bin/env bash
# Feiyun end-to-end suite. Run from anywhere; extra args go to pytest, e.g.
#   tests/e2e/run.sh -k lifecycle -x
# Needs: root, python3, node + npm, runc and busybox-static (installed by the repo's top-level
# script), and a built server (target/debug/feiyun, or FEIYUN_BIN=...).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"

VENV="$HERE/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir -r "$HERE/requirements.txt"
  echo "$WANT" > "$STAMP"
fi

if [ ! -d "$HERE/node_modules/@alicloud/pop-core" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

export FEIYUN_BIN="${FEIYUN_BIN:-$REPO/target/debug/feiyun}"
exec "$VENV/bin/python" -m pytest -q "$HERE" "$@"
