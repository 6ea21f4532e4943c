"""The README's walkthrough ("Using it") runs as written against a fresh region, so the two cannot
drift apart: its shell blocks run in one `bash -euo pipefail` with the built binary on PATH as
`feiyun` and FEIYUN_DATA_DIR naming the region's data directory, as a user's shell would."""

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import feiyun_e2e as fe


def walkthrough() -> str:
    """The ```sh blocks of the README's "Using it" section, in order."""
    text = (fe.REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    assert len(blocks) >= 3, "the walkthrough's shell blocks are missing"
    return "\n".join(blocks)


def test_readme_walkthrough_runs_as_written(make_server, tmp_path):
    srv = make_server("readme")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "feiyun").symlink_to(Path(fe.feiyun_bin()).resolve())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEIYUN_")}
    env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", FEIYUN_DATA_DIR=str(srv.data_dir))
    try:
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    finally:
        # Stopped before its own teardown: end the region the same way, whoever's instances are left.
        if srv.data_dir.exists():
            subprocess.run([fe.feiyun_bin(), "teardown", "--yes", "--data-dir", str(srv.data_dir)],
                           capture_output=True, timeout=120)
    assert out.returncode == 0, f"exit {out.returncode}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
    o, e = out.stdout, out.stderr
    # Images and instances as tables; the instance waited for and its id captured.
    assert re.search(r"^ImageId +ImageName .*\n^feiyun_busybox_x64 ", o, re.M), o
    assert re.search(r"^(i-\w+) +\1 +Running +ecs\.t5-lc2m1\.nano +cn-local-a +PostPaid$", o, re.M), o
    assert re.search(r"^waiting for i-\w+ to be Running: 1/1$", e, re.M), e
    # The command's output and the console, as text.
    assert re.search(r"^Linux web-1 .*\n^web-1$", o, re.M), o
    assert "[feiyun-init] booting web-1" in o, o
    assert re.search(r"^i-\w+: console output, last updated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", e, re.M), e
    # Alice pays for a month up front, is refused the release, converts and is refunded.
    assert '"AccountName": "alice"' in o and '"Balance":"500.00"' in o, o
    balances = re.findall(r"^(\d+\.\d\d)$", o, re.M)
    assert len(balances) == 2 and float(balances[0]) < 500 and balances[1] == "500.00", balances
    month = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    assert re.search(rf"^Feiyun invoice {month} +account alice ", o, re.M), o
    assert re.search(r"Subscription +-\d+\.\d\d", o), o
    assert '"Code": "ChargeTypeViolation"' in o and "refused: the subscription has not expired" in o, o
    # The region is gone: server stopped, data directory deleted.
    srv.proc.wait(30)
    assert not srv.running() and not srv.data_dir.exists()
    assert "stopping the server" in e and f"removed {srv.data_dir}" in e, e
    ids = set(re.findall(r"\b(i-\w+) to be Running", e))
    assert len(ids) == 2 and not [c for i in ids for c in fe.instance_cgroups(i)], ids
