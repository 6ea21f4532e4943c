"""Helpers for the Feiyun end-to-end tests.

- ``FeiyunServer``: starts/stops one ``feiyun up`` process on a loopback port and data dir.
- Signers: a small V2 (HMAC-SHA1, CONTRACT §1.4) and V3 (ACS3-HMAC-SHA256, §1.5) signer,
  used to craft requests the SDKs refuse to send (stale timestamps, replayed nonces, bad versions).
- Clients with one calling convention, ``client.call(Action, {params}) -> dict``, raising
  ``ApiError(status, code, data)`` on API errors:
    * ``TeaClient``  : alibabacloud-ecs20140526 (V3 by default, ``signature_algorithm='v2'`` optional);
                       ``client.sdk`` is the typed SDK client.
    * ``BssClient``  : alibabacloud-bssopenapi20171214 (BssOpenApi 2017-12-14, same endpoint);
                       ``client.sdk`` is the typed SDK client.
    * ``VpcClient``  : alibabacloud-vpc20160428 (VPC 2016-04-28, same endpoint);
                       ``client.sdk`` is the typed SDK client.
    * ``CoreClient`` : aliyun-python-sdk-core AcsClient (V2); ``client.acs`` is the AcsClient.
    * ``RawClient``  : requests + our own signers; ``client.send(...)`` returns the raw response.
- runc helpers for checking what is really running on the host.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import requests

API_VERSION = "2014-05-26"
BSS_VERSION = "2017-12-14"
VPC_VERSION = "2016-04-28"
REGION = "cn-local"
ZONE = "cn-local-a"
SMALL_TYPE = "ecs.t5-lc2m1.nano"
GPU_TYPE = "ecs.gn7-c12g1.3xlarge"
HUGE_TYPE = "ecs.g7.32xlarge"

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent


def feiyun_bin() -> str:
    return os.environ.get("FEIYUN_BIN") or str(REPO_ROOT / "target" / "debug" / "feiyun")


def b64(s: str | bytes) -> str:
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s: str) -> str:
    return base64.b64decode(s).decode("utf-8", errors="replace")


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An API error, whichever client produced it."""

    def __init__(self, status: int | None, code: str | None, data: dict | None, message: str = ""):
        self.status = status
        self.code = code
        self.data = data or {}
        self.message = message or self.data.get("Message", "")
        super().__init__(f"HTTP {status} {code}: {self.message} data={json.dumps(self.data)[:600]}")


# ---------------------------------------------------------------------------------------------
# Signing (CONTRACT §1.3 - §1.5)
# ---------------------------------------------------------------------------------------------


def pct(s) -> str:
    """Canonical percent-encoding: keep A-Z a-z 0-9 - _ . ~, everything else %XX uppercase."""
    return urllib.parse.quote(str(s), safe="-_.~")


def utc_timestamp(offset_seconds: int = 0) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def v2_string_to_sign(method: str, params: list[tuple[str, str]]) -> str:
    items = sorted(((k, v) for k, v in params if k != "Signature"), key=lambda kv: kv[0])
    canon = "&".join(f"{pct(k)}={pct(v)}" for k, v in items)
    return f"{method.upper()}&%2F&{pct(canon)}"


def v2_signature(method: str, params: list[tuple[str, str]], secret: str) -> str:
    sts = v2_string_to_sign(method, params)
    mac = hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def v3_canonical_request(method: str, query: list[tuple[str, str]], headers: dict[str, str],
                         signed_headers: list[str], body: bytes) -> str:
    canon_query = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(query, key=lambda kv: kv[0]))
    lower = {k.lower(): v for k, v in headers.items()}
    canon_headers = "".join(f"{h}:{lower[h].strip()}\n" for h in signed_headers)
    payload_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), "/", canon_query, canon_headers, ";".join(signed_headers), payload_hash])


def v3_signature(method, query, headers, signed_headers, body, secret) -> str:
    creq = v3_canonical_request(method, query, headers, signed_headers, body)
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(creq.encode()).hexdigest()
    return hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------


def _stringify(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def flatten(params: dict) -> dict[str, str]:
    """Flatten lists/dicts the way the SDKs do: Tag=[{Key,Value}] -> Tag.1.Key=..; InstanceId=[a,b] -> InstanceId.1=a."""
    out: dict[str, str] = {}

    def walk(prefix, v):
        if isinstance(v, (list, tuple)):
            for i, item in enumerate(v, 1):
                walk(f"{prefix}.{i}", item)
        elif isinstance(v, dict):
            for k, item in v.items():
                walk(f"{prefix}.{k}", item)
        elif v is not None:
            out[prefix] = _stringify(v)

    for k, v in params.items():
        walk(k, v)
    return out


class RawClient:
    """Hand-rolled client: signs with our own V2/V3 signer and returns the raw HTTP response."""

    def __init__(self, endpoint: str, ak: str, secret: str):
        self.endpoint = endpoint  # host:port
        self.ak = ak
        self.secret = secret
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}/"

    def v2_params(self, action: str, params: dict, *, version: str = API_VERSION, timestamp: str | None = None,
                  nonce: str | None = None, ak: str | None = None) -> list[tuple[str, str]]:
        p = {
            "Action": action,
            "Version": version,
            "Format": "JSON",
            "AccessKeyId": ak or self.ak,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "Timestamp": timestamp or utc_timestamp(),
        }
        p.update(flatten(params))
        return [(k, v) for k, v in p.items() if v is not None]

    def send_v2(self, action: str, params: dict | None = None, *, method: str = "POST", body: bool = False,
                secret: str | None = None, signed_params: list[tuple[str, str]] | None = None,
                **kw) -> requests.Response:
        """Send a V2-signed request. ``body=True`` puts everything in a form body (pop-core POST style)."""
        plist = signed_params or self.v2_params(action, params or {}, **kw)
        if signed_params is None:
            plist = plist + [("Signature", v2_signature(method, plist, secret if secret is not None else self.secret))]
        encoded = "&".join(f"{pct(k)}={pct(v)}" for k, v in plist)
        if body:
            return self.session.request(method, self.url, data=encoded,
                                        headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
        return self.session.request(method, self.url + "?" + encoded, timeout=60)

    def signed_v2(self, action: str, params: dict | None = None, method: str = "POST", **kw) -> list[tuple[str, str]]:
        """A complete signed param list (to replay it verbatim)."""
        plist = self.v2_params(action, params or {}, **kw)
        return plist + [("Signature", v2_signature(method, plist, self.secret))]

    def send_v3(self, action: str, params: dict | None = None, *, version: str = API_VERSION,
                date: str | None = None, nonce: str | None = None, secret: str | None = None,
                ak: str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        """``headers``: more headers (lowercase names), signed like the others."""
        query = list(flatten(params or {}).items())
        headers = {
            "host": self.endpoint,
            "x-acs-action": action,
            "x-acs-version": version,
            "x-acs-date": date or utc_timestamp(),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
            **(headers or {}),
        }
        signed = sorted(headers)
        sig = v3_signature("POST", query, headers, signed, b"", secret if secret is not None else self.secret)
        headers["Authorization"] = (f"ACS3-HMAC-SHA256 Credential={ak or self.ak},"
                                    f"SignedHeaders={';'.join(signed)},Signature={sig}")
        qs = "&".join(f"{pct(k)}={pct(v)}" for k, v in query)
        return self.session.post(self.url + ("?" + qs if qs else ""), headers=headers, data=b"", timeout=60)

    def call(self, action: str, params: dict | None = None, **kw) -> dict:
        r = self.send_v2(action, params, **kw)
        return parse_response(r)


def parse_response(r: requests.Response) -> dict:
    try:
        data = r.json()
    except ValueError:
        raise ApiError(r.status_code, None, {"raw": r.text[:500]}, "response is not JSON")
    if r.status_code >= 300:
        raise ApiError(r.status_code, data.get("Code"), data)
    return data


class TeaClient:
    """alibabacloud-ecs20140526 (tea). V3 signature unless algorithm='v2'."""

    def __init__(self, endpoint: str, ak: str, secret: str, algorithm: str | None = None):
        from alibabacloud_ecs20140526.client import Client
        from alibabacloud_tea_openapi.models import Config

        cfg = Config(access_key_id=ak, access_key_secret=secret, region_id=REGION,
                     endpoint=endpoint, protocol="http", read_timeout=60000, connect_timeout=5000)
        if algorithm:
            cfg.signature_algorithm = algorithm
        self.sdk = Client(cfg)
        self.endpoint = endpoint

    def runtime(self):
        from darabonba.runtime import RuntimeOptions

        return RuntimeOptions(read_timeout=60000, connect_timeout=5000)

    def typed(self, method: str, request):
        """Call a typed SDK method, e.g. typed('run_instances', RunInstancesRequest(...)); returns the body model."""
        try:
            return getattr(self.sdk, method + "_with_options")(request, self.runtime()).body
        except Exception as e:  # noqa: BLE001
            raise tea_error(e) from e

    def call(self, action: str, params: dict | None = None) -> dict:
        """Generic RPC call through the SDK's own call_api (same signing as the typed methods)."""
        from alibabacloud_tea_openapi import utils_models as um
        from alibabacloud_tea_openapi.utils import Utils

        req = um.OpenApiRequest(query=Utils.query(flatten(params or {})))
        p = um.Params(action=action, version=API_VERSION, protocol="HTTP", pathname="/", method="POST",
                      auth_type="AK", style="RPC", req_body_type="formData", body_type="json")
        try:
            res = self.sdk.call_api(p, req, self.runtime())
        except Exception as e:  # noqa: BLE001
            raise tea_error(e) from e
        return res["body"]


class BssClient(TeaClient):
    """alibabacloud-bssopenapi20171214 (BssOpenApi 2017-12-14), pointed at the server like the ECS
    tea client. ``call`` goes through the SDK's own call_api with Version 2017-12-14."""

    def __init__(self, endpoint: str, ak: str, secret: str, algorithm: str | None = None):
        from alibabacloud_bssopenapi20171214.client import Client
        from alibabacloud_tea_openapi.models import Config

        cfg = Config(access_key_id=ak, access_key_secret=secret, region_id=REGION,
                     endpoint=endpoint, protocol="http", read_timeout=60000, connect_timeout=5000)
        if algorithm:
            cfg.signature_algorithm = algorithm
        self.sdk = Client(cfg)
        self.endpoint = endpoint

    def typed(self, method: str, request=None):
        """A typed SDK method: typed('query_bill', QueryBillRequest(...)); typed('query_account_balance')
        for the actions without a request model. Returns the body model."""
        fn = getattr(self.sdk, method + "_with_options")
        try:
            res = fn(self.runtime()) if request is None else fn(request, self.runtime())
        except Exception as e:  # noqa: BLE001
            raise tea_error(e) from e
        return res.body

    def call(self, action: str, params: dict | None = None) -> dict:
        from alibabacloud_tea_openapi import utils_models as um
        from alibabacloud_tea_openapi.utils import Utils

        req = um.OpenApiRequest(query=Utils.query(flatten(params or {})))
        p = um.Params(action=action, version=BSS_VERSION, protocol="HTTP", pathname="/", method="POST",
                      auth_type="AK", style="RPC", req_body_type="formData", body_type="json")
        try:
            res = self.sdk.call_api(p, req, self.runtime())
        except Exception as e:  # noqa: BLE001
            raise tea_error(e) from e
        return res["body"]


class VpcClient(BssClient):
    """alibabacloud-vpc20160428 (VPC 2016-04-28), pointed at the server like the ECS tea client.
    ``call`` goes through the SDK's own call_api with Version 2016-04-28; ``typed`` runs a typed
    method: typed('create_vpc', CreateVpcRequest(...))."""

    def __init__(self, endpoint: str, ak: str, secret: str, algorithm: str | None = None):
        from alibabacloud_tea_openapi.models import Config
        from alibabacloud_vpc20160428.client import Client

        cfg = Config(access_key_id=ak, access_key_secret=secret, region_id=REGION,
                     endpoint=endpoint, protocol="http", read_timeout=60000, connect_timeout=5000)
        if algorithm:
            cfg.signature_algorithm = algorithm
        self.sdk = Client(cfg)
        self.endpoint = endpoint

    def call(self, action: str, params: dict | None = None) -> dict:
        from alibabacloud_tea_openapi import utils_models as um
        from alibabacloud_tea_openapi.utils import Utils

        req = um.OpenApiRequest(query=Utils.query(flatten(params or {})))
        p = um.Params(action=action, version=VPC_VERSION, protocol="HTTP", pathname="/", method="POST",
                      auth_type="AK", style="RPC", req_body_type="formData", body_type="json")
        try:
            res = self.sdk.call_api(p, req, self.runtime())
        except Exception as e:  # noqa: BLE001
            raise tea_error(e) from e
        return res["body"]


def tea_error(e: Exception) -> Exception:
    code = getattr(e, "code", None)
    status = getattr(e, "status_code", None)
    if code is None and status is None:
        return e  # not an API error (connection refused, SDK bug...): let it through as is
    data = getattr(e, "data", None) or {}
    if not isinstance(data, dict):
        data = {"raw": str(data)}
    return ApiError(status, code, data, getattr(e, "message", str(e)))


class CoreClient:
    """aliyun-python-sdk-core AcsClient (V2 HMAC-SHA1)."""

    def __init__(self, endpoint: str, ak: str, secret: str):
        from aliyunsdkcore.client import AcsClient

        self.acs = AcsClient(ak, secret, REGION, timeout=60, connect_timeout=5, max_retry_time=0, auto_retry=False)
        self.endpoint = endpoint

    def do(self, request) -> dict:
        """Run an aliyunsdkecs request object (endpoint is set here)."""
        from aliyunsdkcore.acs_exception.exceptions import ServerException

        request.set_endpoint(self.endpoint)
        request.set_protocol_type("http")
        try:
            return json.loads(self.acs.do_action_with_exception(request))
        except ServerException as e:
            raise ApiError(e.get_http_status(), e.get_error_code(), {"Code": e.get_error_code(),
                                                                     "Message": e.get_error_msg(),
                                                                     "RequestId": e.get_request_id()},
                           e.get_error_msg()) from e

    def call(self, action: str, params: dict | None = None, method: str = "POST") -> dict:
        from aliyunsdkcore.request import CommonRequest

        cr = CommonRequest(domain=self.endpoint, version=API_VERSION, action_name=action)
        cr.set_method(method)
        cr.set_protocol_type("http")
        for k, v in flatten(params or {}).items():
            cr.add_query_param(k, v)
        from aliyunsdkcore.acs_exception.exceptions import ServerException

        try:
            return json.loads(self.acs.do_action_with_exception(cr))
        except ServerException as e:
            raise ApiError(e.get_http_status(), e.get_error_code(), {"Code": e.get_error_code(),
                                                                     "Message": e.get_error_msg(),
                                                                     "RequestId": e.get_request_id()},
                           e.get_error_msg()) from e


def expect_error(fn, *args, status: int | tuple[int, ...] | None = None, code: str | None = None,
                 code_prefix: str | tuple[str, ...] | None = None, **kwargs) -> ApiError:
    """Call fn and assert it raises an ApiError with the given status/code. Returns the error."""
    try:
        res = fn(*args, **kwargs)
    except ApiError as e:
        if status is not None:
            ok = e.status in status if isinstance(status, tuple) else e.status == status
            assert ok, f"expected HTTP {status}, got {e}"
        if code is not None:
            assert e.code == code, f"expected Code {code}, got {e}"
        if code_prefix is not None:
            assert e.code and e.code.startswith(code_prefix), f"expected Code {code_prefix}*, got {e}"
        return e
    raise AssertionError(f"expected an API error (HTTP {status} {code or code_prefix}), got success: "
                         f"{json.dumps(res)[:800] if isinstance(res, (dict, list)) else res!r}")


# ---------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------


def describe(client, ids: list[str], **extra) -> list[dict]:
    res = client.call("DescribeInstances", {"RegionId": REGION, "InstanceIds": json.dumps(ids),
                                            "PageSize": 100, **extra})
    return res["Instances"]["Instance"]


def statuses(client, ids: list[str]) -> dict[str, str]:
    return {i["InstanceId"]: i["Status"] for i in describe(client, ids)}


def wait_status(client, ids, status: str, timeout: float = 60.0, seen: set | None = None) -> dict[str, str]:
    """Poll DescribeInstances until every id has ``status``. ``seen`` collects every status observed."""
    if isinstance(ids, str):
        ids = [ids]
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while True:
        last = statuses(client, list(ids))
        if seen is not None:
            seen.update(last.values())
        if len(last) == len(ids) and all(s == status for s in last.values()):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout after {timeout}s waiting for {status}: {last} (ids {ids})\n"
                                 f"{server_log_about(ids)}")
        time.sleep(0.1)


# The logs of the servers this process started, so that a failure can say what they said.
_SERVER_LOGS: list[Path] = []
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def server_log_about(ids, limit: int = 30) -> str:
    """What the servers' logs said about ``ids``, and their warnings and errors, newest last: a
    failure in CI shows why an instance did not get where it was expected."""
    out = []
    for path in _SERVER_LOGS:
        try:
            lines = path.read_text(errors="replace").splitlines()[-3000:]
        except OSError:
            continue
        hits = [_ANSI.sub("", ln) for ln in lines
                if any(i in ln for i in ids) or " WARN " in _ANSI.sub("", ln) or " ERROR " in _ANSI.sub("", ln)]
        if hits:
            out.append(f"--- {path.name}, about {', '.join(ids)} (last {min(limit, len(hits))} lines):")
            out += [h[:400] for h in hits[-limit:]]
    return "\n".join(out) or "(no server log mentions them)"


def wait_gone(client, ids, timeout: float = 60.0) -> None:
    if isinstance(ids, str):
        ids = [ids]
    deadline = time.monotonic() + timeout
    while True:
        left = describe(client, list(ids))
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"instances still listed after delete: {[(i['InstanceId'], i['Status']) for i in left]}")
        time.sleep(0.1)


def run_instances(client, *, amount: int = 1, tags: dict | None = None, instance_type: str = SMALL_TYPE,
                  image_id: str = "feiyun_busybox_x64", **extra) -> list[str]:
    params = {"RegionId": REGION, "ImageId": image_id, "InstanceType": instance_type, "Amount": amount,
              "InstanceChargeType": "PostPaid"}
    if tags:
        params["Tag"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    params.update(extra)
    res = client.call("RunInstances", params)
    ids = res["InstanceIdSets"]["InstanceIdSet"]
    assert len(ids) == amount, res
    return ids


def force_delete(client, ids: list[str], timeout: float = 60.0) -> None:
    """DeleteInstances Force=true. Instances still being created refuse with 403
    IncorrectInstanceStatus.Initializing (CONTRACT §3.1): retry those until they are out of Pending."""
    deadline = time.monotonic() + timeout
    for i in range(0, len(ids), 100):
        while True:
            try:
                client.call("DeleteInstances", {"RegionId": REGION, "InstanceId": ids[i:i + 100], "Force": True})
                break
            except ApiError as e:
                if e.code != "IncorrectInstanceStatus.Initializing" or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def all_instance_ids(client) -> list[str]:
    out, page = [], 1
    while True:
        res = client.call("DescribeInstances", {"RegionId": REGION, "PageSize": 100, "PageNumber": page})
        batch = res["Instances"]["Instance"]
        out += [i["InstanceId"] for i in batch]
        if len(batch) < 100:
            return out
        page += 1


def run_command(client, instance_id: str, script: str, timeout: float = 60.0, **extra) -> dict:
    """RunCommand (plain text) and wait for the per-instance result; returns the InvocationResult."""
    res = client.call("RunCommand", {"RegionId": REGION, "Type": "RunShellScript", "CommandContent": script,
                                     "InstanceId": [instance_id], **extra})
    return wait_invocation(client, res["InvokeId"], instance_id, timeout)


FINAL_INVOCATION = {"Success", "Failed", "Timeout", "Error", "Aborted", "Cancelled", "Terminated", "Invalid"}


def wait_invocation(client, invoke_id: str, instance_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        res = client.call("DescribeInvocationResults", {"RegionId": REGION, "InvokeId": invoke_id,
                                                        "InstanceId": instance_id})
        results = res["Invocation"]["InvocationResults"]["InvocationResult"]
        if results and results[0].get("InvocationStatus") in FINAL_INVOCATION:
            return results[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"invocation {invoke_id} not finished after {timeout}s: {json.dumps(res)[:800]}")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Host-side checks
# ---------------------------------------------------------------------------------------------


def runc_root(data_dir: Path) -> Path:
    """The server's runc state root. The brief says <data-dir>/runc; the server currently uses
    <data-dir>/host/runc. Use whichever exists (the former if both)."""
    for cand in (Path(data_dir) / "runc", Path(data_dir) / "host" / "runc"):
        if cand.is_dir():
            return cand
    return Path(data_dir) / "runc"


def runc_list(data_dir: Path) -> list[dict]:
    root = runc_root(data_dir)
    if not root.exists():
        return []
    # runc lists the state directories, then reads each: a container deleted in between (an
    # agent removing instances while we look) makes the whole listing fail with ENOENT. Such a
    # listing is taken again; any other failure, or the same one five times, fails the test.
    for _ in range(5):
        out = subprocess.run(["runc", "--root", str(root), "list", "--format", "json"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0 or "no such file or directory" not in out.stderr:
            break
        time.sleep(0.05)
    assert out.returncode == 0, f"runc list failed: {out.stderr}"
    txt = out.stdout.strip()
    return json.loads(txt) if txt and txt != "null" else []


def runc_state(data_dir: Path, cid: str) -> dict | None:
    out = subprocess.run(["runc", "--root", str(runc_root(data_dir)), "state", cid], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def mounts_under(path: Path) -> list[str]:
    path = str(Path(path).resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return found


def instance_cgroups(instance_id: str, parent: str = "feiyun") -> list[str]:
    """The instance's cgroup directories: /sys/fs/cgroup/<hierarchy>/<parent>/<id> (cgroup v1, one
    per controller) and /sys/fs/cgroup/<parent>/<id> (v2)."""
    root = Path("/sys/fs/cgroup")
    hierarchies = [root] + [h for h in root.iterdir() if h.is_dir()] if root.is_dir() else []
    return sorted(str(h / parent / instance_id) for h in hierarchies if (h / parent / instance_id).is_dir())


def host_holdings(data_dir: Path, instance_id: str) -> list[str]:
    """What the host holds of an instance besides its disk: its runc container, mounts under its
    directory and its cgroups. A Stopped instance holds none of them."""
    held = []
    st = runc_state(data_dir, instance_id)
    if st is not None:
        held.append(f"runc container ({st['status']})")
    held += [f"mount {m}" for m in mounts_under(Path(data_dir) / "host" / "instances" / instance_id)]
    held += [f"cgroup {c}" for c in instance_cgroups(instance_id)]
    return held


def hard_cleanup(data_dir: Path) -> list[str]:
    """Last-resort cleanup after a leak was detected: kill/delete runc containers and unmount.
    Returns a description of what had to be cleaned."""
    notes = []
    root = str(runc_root(data_dir))
    for c in runc_list(data_dir):
        notes.append(f"runc container {c['id']} ({c['status']})")
        subprocess.run(["runc", "--root", root, "kill", c["id"], "KILL"], capture_output=True, timeout=30)
        time.sleep(0.2)
        subprocess.run(["runc", "--root", root, "delete", "--force", c["id"]], capture_output=True, timeout=30)
    for mp in sorted(mounts_under(data_dir), key=len, reverse=True):
        notes.append(f"mount {mp}")
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
    return notes


def safe_rmtree(path: Path) -> None:
    """Remove a data dir, but never recurse into something still mounted (it could be a host bind mount)."""
    if mounts_under(path):
        raise RuntimeError(f"refusing to remove {path}: still has mounts {mounts_under(path)}")
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FeiyunServer:
    def __init__(self, data_dir: Path, port: int | None = None, log_path: Path | None = None,
                 config: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.log_path = log_path or self.data_dir.parent / f"{self.data_dir.name}.log"
        # Region configuration (TOML text) passed with `up --config`, kept beside the data dir.
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.ready_at = 0.0
        self.creds: dict | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, settle: float = 0.0) -> "FeiyunServer":
        """Start and wait for readiness; ``settle`` waits a little longer after that."""
        binary = feiyun_bin()
        if not os.path.exists(binary):
            raise RuntimeError(f"feiyun binary not found at {binary} (build it with `cargo build -p feiyun` "
                               f"or set FEIYUN_BIN)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        if self.log_path not in _SERVER_LOGS:
            _SERVER_LOGS.append(self.log_path)
        self._log.write(f"\n===== start {time.ctime()} =====\n".encode())
        self._log.flush()
        env = dict(os.environ)
        env.setdefault("FEIYUN_LOG", "info")
        args = [binary, "up", "--data-dir", str(self.data_dir), "--listen", self.endpoint]
        if self.config is not None:
            cfg = self.data_dir.parent / f"{self.data_dir.name}.toml"
            cfg.write_text(self.config)
            args += ["--config", str(cfg)]
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.wait_ready(timeout)
        self.ready_at = time.monotonic()
        time.sleep(settle)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Ready = this process answers HTTP with the server's JSON error shape. A bare TCP connect
        is not enough: right after a kill -9, the dead server's port can still complete a
        handshake for a moment, and credentials.json is left over from the previous run."""
        cred_file = self.data_dir / "credentials.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"feiyun exited with {self.proc.returncode} during start-up:\n{self.log_tail()}")
            if cred_file.exists():
                try:
                    r = requests.get(f"http://{self.endpoint}/", timeout=1)
                    if "RequestId" in r.json():
                        self.creds = json.loads(cred_file.read_text())
                        return
                except (OSError, ValueError, requests.RequestException):
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"feiyun not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send ``sig`` and wait for the process to exit. Returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                rc = None
            else:
                rc = self.proc.returncode
        else:
            rc = self.proc.returncode
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # clients -----------------------------------------------------------------------------------
    def ak(self) -> tuple[str, str]:
        return self.creds["AccessKeyId"], self.creds["AccessKeySecret"]

    def tea(self, creds: dict | None = None, algorithm: str | None = None) -> TeaClient:
        c = creds or self.creds
        return TeaClient(self.endpoint, c["AccessKeyId"], c["AccessKeySecret"], algorithm)

    def core(self, creds: dict | None = None) -> CoreClient:
        c = creds or self.creds
        return CoreClient(self.endpoint, c["AccessKeyId"], c["AccessKeySecret"])

    def raw(self, creds: dict | None = None) -> RawClient:
        c = creds or self.creds
        return RawClient(self.endpoint, c["AccessKeyId"], c["AccessKeySecret"])

    def bss(self, creds: dict | None = None, algorithm: str | None = None) -> BssClient:
        c = creds or self.creds
        return BssClient(self.endpoint, c["AccessKeyId"], c["AccessKeySecret"], algorithm)

    def vpc(self, creds: dict | None = None, algorithm: str | None = None) -> VpcClient:
        c = creds or self.creds
        return VpcClient(self.endpoint, c["AccessKeyId"], c["AccessKeySecret"], algorithm)

    def cli(self, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([feiyun_bin(), *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})

    def create_account(self, name: str) -> dict:
        out = self.cli("account", "create", name, "--data-dir", str(self.data_dir))
        assert out.returncode == 0, f"account create failed ({out.returncode}): {out.stdout} {out.stderr}"
        acct = json.loads(out.stdout)
        for k in ("AccountName", "AccessKeyId", "AccessKeySecret"):
            assert isinstance(acct.get(k), str) and acct[k], acct
        return acct

    def top_up(self, account_name: str, amount: str, reference: str | None = None) -> str:
        """`feiyun billing topup ACCOUNT AMOUNT` (works while the server runs); returns its stdout."""
        args = ["billing", "topup", account_name, amount, "--data-dir", str(self.data_dir)]
        if reference is not None:
            args += ["--reference", reference]
        out = self.cli(*args)
        assert out.returncode == 0, f"billing topup failed ({out.returncode}): {out.stdout} {out.stderr}"
        return out.stdout


def describe_by_tag(client, key: str, value: str, **extra) -> list[dict]:
    res = client.call("DescribeInstances", {"RegionId": REGION, "Tag": [{"Key": key, "Value": value}],
                                            "PageSize": 100, **extra})
    return res["Instances"]["Instance"]
