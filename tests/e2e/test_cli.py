"""The `feiyun` command line: `feiyun ecs <Action>` and `feiyun account create`."""

import json

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
