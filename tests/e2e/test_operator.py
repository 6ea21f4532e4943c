"""Operating a region: one server per data directory, acting as another account, account list
with balances, default invoice month, and a teardown that leaves the machine clean."""

import datetime as dt
import json
import subprocess
from pathlib import Path

import feiyun_e2e as fe


def test_second_server_on_the_same_data_dir_is_refused(make_server):
    srv = make_server("locked")
    creds_before = (srv.data_dir / "credentials.json").read_text()
    other = fe.free_port()
    out = subprocess.run([fe.feiyun_bin(), "up", "--data-dir", str(srv.data_dir), "--listen", f"127.0.0.1:{other}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0, out
    assert "in use" in out.stderr and f"pid {srv.proc.pid}" in out.stderr, out.stderr
    # The running server's credentials were not rewritten and it still answers.
    assert (srv.data_dir / "credentials.json").read_text() == creds_before
    assert srv.tea().call("DescribeRegions", {})["Regions"]["Region"]


def test_lock_goes_with_the_process(make_server):
    srv = make_server("relock")
    srv.stop(fe.signal.SIGKILL)
    srv.start()
    assert srv.tea().call("DescribeRegions", {})["Regions"]["Region"]


def test_profile_acts_as_the_account_and_list_shows_balances(server):
    name = fe.unique("prof")
    acct = server.create_account(name)
    server.accounts.append(acct)
    profile = Path(acct["Profile"])
    assert profile == server.data_dir / "profiles" / f"{name}.json"
    assert (profile.stat().st_mode & 0o777) == 0o600
    server.top_up(name, "12.34")
    dd = ["--data-dir", str(server.data_dir)]
    # As the account: its balance through BSS, and it sees none of the administrator's instances.
    bal = server.bss(acct).call("QueryAccountBalance", {})
    assert bal["Data"]["AvailableAmount"] in ("12.34", 12.34), bal
    res = server.cli("ecs", "DescribeInstances", "--profile", name, *dd)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["TotalCount"] == 0
    listed = json.loads(server.cli("account", "list", *dd).stdout)["Accounts"]
    mine = [a for a in listed if a["AccountName"] == name]
    assert mine and mine[0]["Balance"] == "12.34" and mine[0]["Profile"] == str(profile), listed
    assert acct["AccessKeyId"] in mine[0]["AccessKeyIds"]
    # An unknown profile is a clear error, not the administrator's key.
    bad = server.cli("ecs", "DescribeInstances", "--profile", "nobody-here", *dd)
    assert bad.returncode != 0 and "no profile" in bad.stderr, bad


def test_invoice_defaults_to_this_month(server):
    name = fe.unique("inv")
    server.accounts.append(server.create_account(name))
    server.top_up(name, "5")
    out = server.cli("billing", "invoice", name, "--data-dir", str(server.data_dir))
    assert out.returncode == 0, out.stderr
    assert dt.datetime.now(dt.timezone.utc).strftime("%Y-%m") in out.stdout
    assert "5.00" in out.stdout, out.stdout


def test_teardown_leaves_nothing(make_server):
    srv = make_server("teardown")
    tea = srv.tea()
    ids = fe.run_instances(tea, amount=2)
    fe.wait_status(tea, ids, "Running")
    dd = srv.data_dir
    dry = srv.cli("teardown", "--data-dir", str(dd))
    assert dry.returncode == 1 and "--yes" in dry.stdout, dry
    assert srv.running() and dd.exists()
    out = srv.cli("teardown", "--data-dir", str(dd), "--yes", timeout=120)
    assert out.returncode == 0, (out.stdout, out.stderr)
    srv.proc.wait(30)
    assert not srv.running()
    assert not dd.exists()
    assert not fe.mounts_under(dd.parent / dd.name)
    assert not [p for i in ids for p in Path("/sys/fs/cgroup").glob(f"*/feiyun/{i}")]
    ps = subprocess.run(["runc", "--root", str(fe.runc_root(dd)), "list"], capture_output=True, text=True)
    assert not any(i in ps.stdout for i in ids)
    # Not a data directory: refused.
    plain = dd.parent / "not-feiyun"
    plain.mkdir()
    (plain / "x").write_text("keep me")
    refused = srv.cli("teardown", "--data-dir", str(plain), "--yes")
    assert refused.returncode != 0 and (plain / "x").exists()
