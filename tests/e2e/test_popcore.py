"""Runs popcore_test.js (node:test + @alicloud/pop-core) against the session server."""

import os
import shutil
import subprocess

import feiyun_e2e as fe


def test_popcore_node_suite(server):
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (fe.E2E_DIR / "node_modules" / "@alicloud" / "pop-core").is_dir(), \
        "run `npm ci` in tests/e2e (run.sh does it)"
    env = {**os.environ, "FEIYUN_ENDPOINT": server.endpoint,
           "FEIYUN_ACCESS_KEY_ID": server.creds["AccessKeyId"],
           "FEIYUN_ACCESS_KEY_SECRET": server.creds["AccessKeySecret"]}
    out = subprocess.run([node, "--test", "--test-reporter=spec", "popcore_test.js"], cwd=fe.E2E_DIR, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, f"node suite failed (exit {out.returncode}):\n{out.stdout[-6000:]}\n{out.stderr[-3000:]}"
