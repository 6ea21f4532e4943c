"""CalculateTco (Feiyun's own API, Version 2026-11-01): the same comparison as `feiyun tco`,
signed and served by the running region."""

import re

import feiyun_e2e as fe

VERSION = "2026-11-01"


def test_calculate_tco_matches_the_worked_example(raw):
    plan = (fe.REPO_ROOT / "docs" / "tco-example.toml").read_text()
    r = raw.send_v2("CalculateTco", {"Plan": plan}, version=VERSION, body=True)
    assert r.status_code == 200, r.text
    body = r.json()
    report = body["Report"]
    # The worked example of docs/tco.md, three years.
    assert report["years"] == 3
    assert report["total"] == {"own": "1318077.28", "payg": "2622107.38", "subscription": "2607725.56",
                               "mix": "2391766.33"}
    assert report["break_even"]["nominal"]["summary"] == "year 2, month 1"
    assert len(report["by_year"]) == 3
    assert "Own data center vs renting on Feiyun" in body["Table"]
    assert body["Chart"].startswith("<svg")


def test_calculate_tco_with_a_trace_and_bad_input(raw):
    plan = (fe.REPO_ROOT / "docs" / "tco-example.toml").read_text()
    # The same plan with its [[workload]] tables taken out: the trace is the workload.
    workload_free = re.sub(r"(?ms)^\[\[workload\]\].*?(?=^\[)", "", plan)
    trace = "arrival_s,lifetime_s,vcpus,memory_gib\n0,86400,2,8\n3600,7200,4,16\n"
    r = raw.send_v2("CalculateTco", {"Plan": workload_free, "Trace": trace}, version=VERSION, body=True)
    assert r.status_code == 200, r.text
    rented = r.json()["Report"]["total"]
    assert set(rented) == {"own", "payg", "subscription", "mix"}
    # The trace is a small, peaky workload: paying by the second costs less than a subscription.
    assert float(rented["payg"]) < float(rented["subscription"]), rented
    bad = raw.send_v2("CalculateTco", {"Plan": "years = 9"}, version=VERSION, body=True)
    assert bad.status_code == 400, bad.text
    assert bad.json()["Code"] == "InvalidParameter.Plan"
    missing = raw.send_v2("CalculateTco", {}, version=VERSION, body=True)
    assert missing.status_code == 400 and missing.json()["Code"] == "MissingParameter"
    broken = raw.send_v2("CalculateTco", {"Plan": plan, "Trace": "not,a\ntrace"}, version=VERSION, body=True)
    assert broken.status_code == 400 and broken.json()["Code"] == "InvalidParameter.Trace"
