"""The `feiyun` command line: `feiyun ecs|bss|feiyun <Action>` (help, refusals before anything is
sent, profiles, --wait-for, --output table, --query, readable console output) and `feiyun account
create`."""

import datetime as dt
import json
import re
import time

import pytest

import feiyun_e2e as fe


def test_ecs_cli_success_with_data_dir(server):
    out = server.cli("ecs", "DescribeRegions", "--data-dir", str(server.data_dir))
    assert out.returncode == 0, (out.stdout, out.stderr)
    res = json.loads(out.stdout)
    assert res["Regions"]["Region"][0]["RegionId"] == fe.REGION
    assert res["RequestId"]


def test_ecs_cli_params_with_env_credentials(server):
    env = {"FEIYUN_ACCESS_KEY_ID": server.creds["AccessKeyId"],
           "FEIYUN_ACCESS_KEY_SECRET": server.creds["AccessKeySecret"],
           "FEIYUN_ENDPOINT": server.endpoint}
    out = server.cli("ecs", "DescribeZones", "--RegionId", fe.REGION, env=env)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert json.loads(out.stdout)["Zones"]["Zone"][0]["ZoneId"] == fe.ZONE


def test_ecs_cli_error(server):
    out = server.cli("ecs", "StopInstance", "--InstanceId", "i-doesnotexist0000", "--data-dir", str(server.data_dir))
    assert out.returncode != 0
    err = json.loads(out.stdout)
    assert err["Code"] == "InvalidInstanceId.NotFound", err
    assert err["RequestId"]


def test_account_create(server):
    name = fe.unique("cli")
    acct = server.create_account(name)
    server.accounts.append(acct)
    assert acct["AccountName"] == name
    # The new key works right away against the running server.
    assert server.tea(acct).call("DescribeRegions", {})["Regions"]["Region"]
    # Names are unique.
    out = server.cli("account", "create", name, "--data-dir", str(server.data_dir))
    assert out.returncode != 0, out.stdout


def test_credentials_file(server):
    path = server.data_dir / "credentials.json"
    assert (path.stat().st_mode & 0o777) == 0o600, oct(path.stat().st_mode)
    creds = json.loads(path.read_text())
    assert set(creds) >= {"AccessKeyId", "AccessKeySecret", "Endpoint"}
    assert creds["Endpoint"] == server.endpoint


# ---- `feiyun <product> <Action>`: help, refusals, products, waiting, output ---------------------

UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def fy(server, *args, timeout: float = 180):
    """The command line against the session's region (FEIYUN_DATA_DIR, as a user would set it)."""
    return server.cli(*args, env={"FEIYUN_DATA_DIR": str(server.data_dir)}, timeout=timeout)


def ok(out) -> str:
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out.stdout


def refused(out, *phrases: str) -> str:
    """A command line refused: exit 2, nothing on stdout, each phrase in the error."""
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stdout == "", out.stdout
    err = json.loads(out.stderr)["Error"]
    for p in phrases:
        assert p in err, (p, err)
    return err


@pytest.fixture(scope="module")
def tenant(server):
    """An account of its own (with a profile and money), so what it sees is only what these tests made."""
    name = fe.unique("cli")
    acct = server.create_account(name)
    server.accounts.append(acct)
    server.top_up(name, "100")
    return name


def test_help_lists_actions_and_describes_parameters(server):
    h = ok(fy(server, "ecs", "--help"))
    assert re.search(r"^  RunInstances +Create and start one or more instances\.$", h, re.M), h
    assert re.search(r"^  GetInstanceConsoleOutput +", h, re.M) and "--wait-for" in h and "--profile" in h
    run = ok(fy(server, "ecs", "RunInstances", "--help"))
    assert run.startswith("feiyun ecs RunInstances: Create and start one or more instances."), run
    assert re.search(r"^  --InstanceType +required  string$", run, re.M), run
    assert re.search(r"^  --Tag\.N\.Key +optional  string of at most 128 characters; N from 1 to 20$", run, re.M), run
    assert re.search(r"^  --InstanceChargeType +optional  one of PostPaid, PrePaid$", run, re.M), run
    assert "--wait-for" in run
    assert "QueryAccountBalance" in ok(fy(server, "bss", "--help"))
    assert "CalculateTco" in ok(fy(server, "feiyun", "--help"))
    assert ok(fy(server, "api", "CalculateTco", "-h")).startswith("feiyun feiyun CalculateTco:")
    # The top-level help names the products.
    top = ok(fy(server, "--help"))
    assert all(re.search(rf"^  {p} ", top, re.M) for p in ("ecs", "bss", "feiyun")), top


def test_misspelt_action_gets_did_you_mean(server):
    refused(fy(server, "ecs", "DescribeInstance"), "did you mean DescribeInstances?")
    refused(fy(server, "ecs", "runinstances"), "did you mean RunInstances?")
    refused(fy(server, "ecs", "QueryAccountBalance"), "feiyun bss QueryAccountBalance")
    refused(fy(server, "ecs"), "feiyun ecs --help")


def test_unknown_parameters_are_refused_before_anything_is_sent(server, tenant):
    # Before, --InstanceIDs was ignored and every instance came back.
    refused(fy(server, "ecs", "DescribeInstances", "--InstanceIDs", '["i-x"]'), "did you mean --InstanceIds?")
    # A misspelt parameter of a call that would create something: nothing is created.
    out = fy(server, "ecs", "RunInstances", "--InstanceType", fe.SMALL_TYPE, "--ImageId", "feiyun_busybox_x64",
             "--Amuont", "2", "--profile", tenant)
    refused(out, "RunInstances has no parameter --Amuont", "did you mean --Amount?")
    refused(fy(server, "ecs", "StartInstances", "--InstanceId", "i-1", "--profile", tenant), "--InstanceId.1")
    refused(fy(server, "ecs", "StartInstances", "--InstanceId.101", "i-1", "--profile", tenant), "from 1 to 100")
    refused(fy(server, "ecs", "RunInstances", "--Tag.1.Kye", "k", "--profile", tenant), "did you mean --Tag.1.Key?")
    refused(fy(server, "ecs", "DescribeInstances", "--outptu", "table"), "did you mean --output?")
    refused(fy(server, "ecs", "RunCommand", "--timeout", "5"), "--Timeout")
    refused(fy(server, "bss", "QueryAccountBalance", "--RegionId", fe.REGION), "has no parameter --RegionId")
    listed = json.loads(ok(fy(server, "ecs", "DescribeInstances", "--profile", tenant)))
    assert listed["TotalCount"] == 0, listed
    # Well-formed repeated parameters go through (and the server answers for them).
    out = fy(server, "ecs", "StartInstances", "--InstanceId.1", "i-nothere1", "--InstanceId.2", "i-nothere2",
             "--profile", tenant)
    assert out.returncode == 1 and json.loads(out.stdout)["Code"].startswith("InvalidInstanceId"), out


def test_products_by_any_case_and_profiles(server, tenant):
    assert ok(fy(server, "ECS", "DescribeRegions", "--query", "Regions.Region[0].RegionId")) == f"{fe.REGION}\n"
    bal = json.loads(ok(fy(server, "BssOpenApi", "QueryAccountBalance", "--profile", tenant)))
    assert bal["Data"]["AvailableAmount"] == "100.00", bal
    assert ok(fy(server, "bss", "QueryAccountBalance", "--profile", tenant, "--query", "Data.AvailableAmount")) == "100.00\n"
    # The same through the profile's file, and the administrator's own balance is another one.
    creds = str(server.data_dir / "profiles" / f"{tenant}.json")
    assert ok(fy(server, "bssopenapi", "QueryAccountBalance", "--credentials", creds,
                 "--query", "Data.AvailableAmount")) == "100.00\n"
    assert ok(fy(server, "bss", "QueryAccountBalance", "--query", "Data.AvailableAmount")) != "100.00\n"
    refused(fy(server, "bss", "QueryAccountBalance", "--profile", "nobody-here"), "no profile")


def test_feiyun_product_with_a_plan_too_long_for_a_url(server):
    plan = (fe.REPO_ROOT / "docs" / "tco-example.toml").read_text()
    out = ok(fy(server, "feiyun", "CalculateTco", "--Plan", plan, "--query", "Report.break_even.nominal.summary"))
    assert out.startswith("year "), out


def test_wait_for_instances_query_and_table(server, tenant, track):
    out = fy(server, "ecs", "RunInstances", "--InstanceType", fe.SMALL_TYPE, "--ImageId", "feiyun_busybox_x64",
             "--Amount", "2", "--InstanceName", "cli-web", "--profile", tenant,
             "--wait-for", "Running", "--query", "InstanceIdSets.InstanceIdSet")
    ids = ok(out).split()
    prof = json.loads((server.data_dir / "profiles" / f"{tenant}.json").read_text())
    client = server.raw(prof)
    track.add(ids, client)
    assert len(ids) == 2 and all(i.startswith("i-") for i in ids), out
    assert "waiting for 2 instances to be Running: 2/2" in out.stderr, out.stderr
    assert fe.statuses(client, ids) == {i: "Running" for i in ids}
    # A table: one row per instance, the usual columns or chosen ones.
    table = ok(fy(server, "ecs", "DescribeInstances", "--profile", tenant, "--output", "table")).splitlines()
    assert re.match(r"^InstanceId +InstanceName +Status +InstanceType +ZoneId +InstanceChargeType$", table[0]), table
    assert len(table) == 3 and all(re.search(rf"{i} +cli-web +Running +{fe.SMALL_TYPE} +{fe.ZONE} +PostPaid$", "\n".join(table), re.M) for i in ids), table
    cols = ok(fy(server, "ecs", "DescribeInstances", "--profile", tenant, "--columns", "InstanceId,Status,Cpu"))
    assert sorted(cols.splitlines()[1:]) == sorted(f"{i}  Running  1" for i in ids), cols
    # Stop both, by repeated parameters, and wait; then release and wait until they are gone.
    out = fy(server, "ecs", "StopInstances", "--InstanceId.1", ids[0], "--InstanceId.2", ids[1], "--profile", tenant,
             "--wait-for", "Stopped")
    ok(out)
    assert "waiting for 2 instances to be Stopped: 2/2" in out.stderr, out.stderr
    assert fe.statuses(client, ids) == {i: "Stopped" for i in ids}
    ok(fy(server, "ecs", "DeleteInstances", "--InstanceId.1", ids[0], "--InstanceId.2", ids[1], "--profile", tenant,
          "--wait-for", "Deleted"))
    assert fe.describe(client, ids) == []


def test_wait_for_times_out_with_a_clear_message(server, tenant, track):
    out = fy(server, "ecs", "RunInstances", "--InstanceType", fe.SMALL_TYPE, "--ImageId", "feiyun_busybox_x64",
             "--profile", tenant, "--wait-for", "Stopped", "--timeout", "1")
    prof = json.loads((server.data_dir / "profiles" / f"{tenant}.json").read_text())
    ids = json.loads(out.stdout)["InstanceIdSets"]["InstanceIdSet"]  # the answer still prints: it names what was made
    track.add(ids, server.raw(prof))
    assert out.returncode == 3, (out.returncode, out.stderr)
    err = json.loads(out.stderr.splitlines()[-1])["Error"]
    assert err.startswith(f"Timed out after 1s waiting for {ids[0]} to be Stopped: 0/1"), err


def test_run_command_wait_and_decoded_output(server, tenant, track):
    prof = json.loads((server.data_dir / "profiles" / f"{tenant}.json").read_text())
    client = server.raw(prof)
    iid = ok(fy(server, "ecs", "RunInstances", "--InstanceType", fe.SMALL_TYPE, "--ImageId", "feiyun_busybox_x64",
                "--HostName", "cli-box", "--profile", tenant, "--wait-for", "Running",
                "--query", "InstanceIdSets.InstanceIdSet[0]")).strip()
    track.add(iid, client)
    out = fy(server, "ecs", "RunCommand", "--Type", "RunShellScript", "--CommandContent", "echo out-$((6*7)); hostname",
             "--InstanceId.1", iid, "--profile", tenant, "--wait-for", "Finished", "--query", "InvokeId")
    invoke = ok(out).strip()
    assert f"waiting for invocation {invoke} to finish: 1/1" in out.stderr, out.stderr
    path = "Invocation.InvocationResults.InvocationResult[0].Output"
    text = ok(fy(server, "ecs", "DescribeInvocationResults", "--InvokeId", invoke, "--profile", tenant, "--query", path))
    assert text == "out-42\ncli-box\n", text
    wire = ok(fy(server, "ecs", "DescribeInvocationResults", "--InvokeId", invoke, "--profile", tenant,
                 "--output", "json", "--query", path))
    assert fe.unb64(json.loads(wire)) == "out-42\ncli-box\n", wire
    # Waiting for success of a command that fails: exit 1, and why.
    out = fy(server, "ecs", "RunCommand", "--Type", "RunShellScript", "--CommandContent", "exit 3",
             "--InstanceId.1", iid, "--profile", tenant, "--wait-for", "Success")
    assert out.returncode == 1 and "it ended Failed" in out.stderr, (out.stdout, out.stderr)


def test_console_output_as_text_with_utc_time(server, tenant, track):
    prof = json.loads((server.data_dir / "profiles" / f"{tenant}.json").read_text())
    client = server.raw(prof)
    iid = ok(fy(server, "ecs", "RunInstances", "--InstanceType", fe.SMALL_TYPE, "--ImageId", "feiyun_busybox_x64",
                "--UserData", fe.b64("echo hello from the console test"), "--profile", tenant,
                "--wait-for", "Running", "--query", "InstanceIdSets.InstanceIdSet[0]")).strip()
    track.add(iid, client)
    args = ("ecs", "GetInstanceConsoleOutput", "--InstanceId", iid, "--profile", tenant)
    deadline = time.monotonic() + 30
    while "[feiyun-init] ready" not in (out := fy(server, *args)).stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "[feiyun-init] booting" in ok(out) and "hello from the console test\n" in out.stdout, out.stdout
    when = out.stderr.strip().rsplit(" ", 1)[-1]
    assert out.stderr.startswith(f"{iid}: console output, last updated ") and UTC_TIME.match(when), out.stderr
    # As sent: base64, and the time in UTC+8 without a zone; --raw and --output json agree.
    raw = json.loads(ok(fy(server, *args, "--raw")))
    assert raw == {**json.loads(ok(fy(server, *args, "--output", "json"))), "RequestId": raw["RequestId"]}
    assert "[feiyun-init] booting" in fe.unb64(raw["ConsoleOutput"])
    sent = dt.datetime.strptime(raw["LastUpdateTime"], "%Y-%m-%d %H:%M:%S")
    shown = dt.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ")
    assert sent - shown == dt.timedelta(hours=8), (raw["LastUpdateTime"], when)
    # --query sees the readable answer.
    assert UTC_TIME.match(ok(fy(server, *args, "--query", "LastUpdateTime")).strip())
