"""Billing end to end: balances and top-ups, BssOpenApi 2017-12-14 through the typed SDK
(alibabacloud-bssopenapi20171214), subscriptions (PrePaid) and their conversion, hourly
settlement and arrears, the spot market, and the invoice command line.

Every amount is computed by hand from catalog/prices.toml (region cn-local, CNY):
    vCPU-hour 0.1764 (ecs.t5 family: 0.0400), GiB-hour 0.0221, cloud_essd 0.00139 per GiB-hour,
    cloud_efficiency 0.00049 per GiB-hour, bandwidth 0.063 per Mbit/s-hour for the first 5 and 0.25
    above; a month is 730 hours; 12 months or more are 15% off.
    ecs.g7.large       (2 vCPU, 8 GiB)     2 × 0.1764 + 8 × 0.0221     = 0.5296 per hour
    ecs.t5-lc2m1.nano  (1 vCPU, 0.5 GiB)   1 × 0.0400 + 0.5 × 0.0221   = 0.05105 per hour
    ecs.g7.32xlarge    (128 vCPU, 512 GiB) 128 × 0.1764 + 512 × 0.0221 = 33.8944 per hour
An instance's system disk is sized as RunInstances makes it: SystemDisk.Size, else the larger of
40 GiB and the image (the busybox image is 1 GiB), in cloud_essd unless SystemDisk.Category says
otherwise. So every instance here has 40 GiB of cloud_essd: 40 × 0.00139 = 0.0556 per hour.

Timing-dependent scenarios (settlement, arrears, spot) run on private servers with a short
`[billing]` configuration and poll with timeouts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from decimal import ROUND_HALF_UP, Decimal

import feiyun_e2e as fe

NANO = fe.SMALL_TYPE
NANO_HOUR = Decimal("0.05105")
G7_LARGE_HOUR = Decimal("0.5296")
G7_32X_HOUR = Decimal("33.8944")
SYSTEM_DISK_GIB = 40
DISK_HOUR = Decimal("0.0556")  # 40 GiB × 0.00139
IMAGE = "feiyun_busybox_x64"

# A month of a nano with its 40 GiB system disk: 0.05105 × 730 = 37.2665 and 0.0556 × 730 = 40.588;
# (0.05105 + 0.0556) × 730 = 0.10665 × 730 = 77.8545 → 77.85 charged.
NANO_MONTH_QUOTE = Decimal("77.8545")
NANO_MONTH = Decimal("77.85")


def dec(v) -> Decimal:
    """A wire amount (float or string) as a Decimal, by its shortest representation."""
    return Decimal(str(v))


def cents(x: Decimal) -> Decimal:
    """Rounded half up to a cent, as the server settles money."""
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def cycle() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")


def wait_for(fn, timeout: float, what: str, interval: float = 0.1):
    """Poll ``fn`` until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def add_months(minute_stamp: str, months: int) -> str:
    """`yyyy-MM-ddTHH:mmZ` plus calendar months (the day clamped to the month's end)."""
    t = dt.datetime.strptime(minute_stamp, "%Y-%m-%dT%H:%MZ")
    m = t.month - 1 + months
    year, month = t.year + m // 12, m % 12 + 1
    last_day = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31,
                31, 30, 31, 30, 31][month - 1]
    return t.replace(year=year, month=month, day=min(t.day, last_day)).strftime("%Y-%m-%dT%H:%MZ")


def new_account(srv: fe.FeiyunServer, prefix: str, top_up: str | None = None) -> dict:
    acct = srv.create_account(fe.unique(prefix))
    srv.accounts.append(acct)
    if top_up is not None:
        srv.top_up(acct["AccountName"], top_up)
    return acct


def balance(bss: fe.BssClient) -> str:
    return bss.typed("query_account_balance").data.available_amount


def prepaid(client, instance_type: str = NANO, **extra) -> dict:
    return client.call("RunInstances", {"RegionId": fe.REGION, "ImageId": IMAGE, "InstanceType": instance_type,
                                        "InstanceChargeType": "PrePaid", "Period": 1, "PeriodUnit": "Month",
                                        **extra})


def to_post_paid(client, ids: list[str]) -> dict:
    return client.call("ModifyInstanceChargeType", {"RegionId": fe.REGION, "InstanceIds": json.dumps(ids),
                                                    "InstanceChargeType": "PostPaid"})


def release_subscriptions(client, ids: list[str]) -> None:
    """Cleanup: the shared teardown force-deletes instances, which an unexpired subscription refuses;
    convert what is still PrePaid to pay-as-you-go and delete it."""
    left = fe.describe(client, ids)
    pre = [i["InstanceId"] for i in left if i["InstanceChargeType"] == "PrePaid"]
    if pre:
        to_post_paid(client, pre)
    if left:
        fe.force_delete(client, [i["InstanceId"] for i in left])
        fe.wait_gone(client, [i["InstanceId"] for i in left])


# ---------------------------------------------------------------------------------------------
# Balances and top-ups
# ---------------------------------------------------------------------------------------------


def test_balance_starts_at_zero_and_follows_top_ups(server):
    from alibabacloud_bssopenapi20171214 import models as bss_models

    acct = new_account(server, "bal")
    bss = server.bss(acct)
    body = bss.typed("query_account_balance")
    assert isinstance(body, bss_models.QueryAccountBalanceResponseBody)
    assert (body.code, body.message, body.success) == ("Success", "Successful!", True)
    assert body.request_id
    d = body.data
    assert (d.available_amount, d.available_cash_amount, d.credit_amount, d.currency) == ("0.00", "0.00", "0.00", "CNY")

    out = json.loads(server.top_up(acct["AccountName"], "12.34"))
    assert (out["AccountName"], out["Added"], out["Balance"]) == (acct["AccountName"], "12.34", "12.34")
    # The running server sees the top-up at once, through both signatures.
    assert balance(bss) == "12.34"
    assert server.bss(acct, algorithm="v2").typed("query_account_balance").data.available_cash_amount == "12.34"

    # A reference is paid once: 12.34 + 0.66 = 13.00, and the repeat adds nothing.
    assert json.loads(server.top_up(acct["AccountName"], "0.66", reference="inv-1"))["Balance"] == "13.00"
    again = json.loads(server.top_up(acct["AccountName"], "0.66", reference="inv-1"))
    assert (again["Added"], again["Balance"]) == ("0.00", "13.00")
    assert balance(bss) == "13.00"

    # Balances are per account: the admin account did not get any of it.
    assert balance(server.bss()) == "0.00"

    for bad in (["1.234"], ["0"], ["abc"]):
        out = server.cli("billing", "topup", acct["AccountName"], *bad, "--data-dir", str(server.data_dir))
        assert out.returncode != 0, (bad, out.stdout)
    out = server.cli("billing", "topup", fe.unique("nobody"), "5", "--data-dir", str(server.data_dir))
    assert out.returncode != 0, out.stdout
    assert balance(bss) == "13.00"


# ---------------------------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------------------------


def test_get_pay_as_you_go_price(server):
    from alibabacloud_bssopenapi20171214 import models as m

    bss = server.bss()
    mod = m.GetPayAsYouGoPriceRequestModuleList
    modules = [
        mod(module_code="InstanceType", config="InstanceType:ecs.g7.large", price_type="Hour"),
        mod(module_code="SystemDisk", config="SystemDisk.Category:cloud_essd,SystemDisk.Size:40", price_type="Hour"),
        mod(module_code="InternetMaxBandwidthOut", config="InternetMaxBandwidthOut:7", price_type="Hour"),
        mod(module_code="DataDisk", config="DataDisk.Category:cloud_efficiency,DataDisk.Size:100", price_type="Month"),
        mod(module_code="InstanceType", config="InstanceType:ecs.g7.large", price_type="Year"),
    ]
    req = m.GetPayAsYouGoPriceRequest(product_code="ecs", subscription_type="PayAsYouGo", region=fe.REGION,
                                      module_list=modules)
    body = bss.typed("get_pay_as_you_go_price", req)
    assert body.success is True and body.code == "Success"
    assert body.data.currency == "CNY"
    got = [(d.module_code, dec(d.original_cost), dec(d.cost_after_discount), dec(d.unit_price))
           for d in body.data.module_details.module_detail]
    assert got == [
        ("InstanceType", Decimal("0.5296"), Decimal("0.5296"), Decimal("0.5296")),
        # 40 GiB × 0.00139 = 0.0556 per hour.
        ("SystemDisk", Decimal("0.0556"), Decimal("0.0556"), Decimal("0.0556")),
        # 5 × 0.063 + 2 × 0.25 = 0.815 per hour.
        ("InternetMaxBandwidthOut", Decimal("0.815"), Decimal("0.815"), Decimal("0.815")),
        # 100 GiB × 0.00049 = 0.049 per hour; × 730 = 35.77 a month.
        ("DataDisk", Decimal("35.77"), Decimal("35.77"), Decimal("0.049")),
        # 0.5296 × 730 × 12 = 4639.296 a year (a pay-as-you-go price: no term discount).
        ("InstanceType", Decimal("4639.296"), Decimal("4639.296"), Decimal("0.5296")),
    ]

    base = {"ProductCode": "ecs", "SubscriptionType": "PayAsYouGo",
            "ModuleList": [{"ModuleCode": "InstanceType", "Config": "InstanceType:ecs.g7.large", "PriceType": "Hour"}]}
    # PriceType Month: 0.5296 × 730 = 386.608.
    res = bss.call("GetPayAsYouGoPrice", {**base, "ModuleList": [{**base["ModuleList"][0], "PriceType": "Month"}]})
    assert dec(res["Data"]["ModuleDetails"]["ModuleDetail"][0]["OriginalCost"]) == Decimal("386.608")
    fe.expect_error(bss.call, "GetPayAsYouGoPrice", {**base, "SubscriptionType": "Subscription"}, status=400,
                    code="InvalidParameter")
    fe.expect_error(bss.call, "GetPayAsYouGoPrice", {**base, "ProductCode": "rds"}, status=400,
                    code="InvalidParameter.ProductCode")
    fe.expect_error(bss.call, "GetPayAsYouGoPrice",
                    {**base, "ModuleList": [{"ModuleCode": "Snapshot", "Config": "Size:1", "PriceType": "Hour"}]},
                    status=400, code="InvalidParameter.ModuleCode")
    fe.expect_error(bss.call, "GetPayAsYouGoPrice",
                    {**base, "ModuleList": [{**base["ModuleList"][0], "PriceType": "Week"}]}, status=400,
                    code="InvalidParameter")
    fe.expect_error(bss.call, "GetPayAsYouGoPrice", {"ProductCode": "ecs", "SubscriptionType": "PayAsYouGo"},
                    status=400, code="MissingParameter")


def test_get_subscription_price(server):
    from alibabacloud_bssopenapi20171214 import models as m

    bss = server.bss()
    mod = m.GetSubscriptionPriceRequestModuleList
    g7 = mod(module_code="InstanceType", config="InstanceType:ecs.g7.large")
    disk = mod(module_code="SystemDisk", config="SystemDisk.Category:cloud_essd,SystemDisk.Size:40")

    # One month of a g7.large: 0.5296 × 730 = 386.608, no discount.
    body = bss.typed("get_subscription_price", m.GetSubscriptionPriceRequest(
        product_code="ecs", subscription_type="Subscription", order_type="NewOrder", service_period_quantity=1,
        service_period_unit="Month", quantity=1, module_list=[g7]))
    d = body.data
    assert (dec(d.original_price), dec(d.discount_price), dec(d.trade_price), d.quantity, d.currency) == (
        Decimal("386.608"), Decimal("0"), Decimal("386.608"), 1, "CNY")
    assert d.promotion_details.promotion_detail == []

    # A year of two g7.large with a 40 GiB ESSD each:
    #   instance 0.5296 × 8760 = 4639.296, × 2 = 9278.592; 15% = 1391.7888; 7886.8032 after it.
    #   disk 0.0556 × 8760 = 487.056, × 2 = 974.112; 15% = 146.1168.
    #   total 10252.704, discount 1537.9056, trade 8714.7984.
    body = bss.typed("get_subscription_price", m.GetSubscriptionPriceRequest(
        product_code="ecs", subscription_type="Subscription", order_type="NewOrder", service_period_quantity=1,
        service_period_unit="Year", quantity=2, region=fe.REGION, module_list=[g7, disk]))
    d = body.data
    assert (dec(d.original_price), dec(d.discount_price), dec(d.trade_price), d.quantity) == (
        Decimal("10252.704"), Decimal("1537.9056"), Decimal("8714.7984"), 2)
    details = {x.module_code: x for x in d.module_details.module_detail}
    i = details["InstanceType"]
    assert (dec(i.original_cost), dec(i.invoice_discount), dec(i.cost_after_discount), dec(i.unit_price)) == (
        Decimal("9278.592"), Decimal("1391.7888"), Decimal("7886.8032"), Decimal("386.608"))
    assert dec(details["SystemDisk"].original_cost) == Decimal("974.112")
    promos = d.promotion_details.promotion_detail
    assert len(promos) == 1, [p.to_map() for p in promos]
    assert "15%" in promos[0].promotion_desc and "12" in promos[0].promotion_desc, promos[0].to_map()

    # A 24-month renewal of one g7.large: 0.5296 × 730 × 24 = 9278.592; the price book takes 25% off
    # from 24 months (2319.648): 6958.944.
    res = bss.call("GetSubscriptionPrice", {"ProductCode": "ecs", "SubscriptionType": "Subscription",
                                            "OrderType": "Renewal", "ServicePeriodQuantity": 24,
                                            "ServicePeriodUnit": "Month",
                                            "ModuleList": [{"ModuleCode": "InstanceType",
                                                            "Config": "InstanceType:ecs.g7.large"}]})
    assert (dec(res["Data"]["OriginalPrice"]), dec(res["Data"]["DiscountPrice"]), dec(res["Data"]["TradePrice"])) == (
        Decimal("9278.592"), Decimal("2319.648"), Decimal("6958.944"))
    assert "25%" in res["Data"]["PromotionDetails"]["PromotionDetail"][0]["PromotionDesc"], res

    base = {"ProductCode": "ecs", "SubscriptionType": "Subscription", "OrderType": "NewOrder",
            "ServicePeriodQuantity": 1, "ServicePeriodUnit": "Month",
            "ModuleList": [{"ModuleCode": "InstanceType", "Config": "InstanceType:ecs.g7.large"}]}
    fe.expect_error(bss.call, "GetSubscriptionPrice", {**base, "OrderType": "Upgrade"}, status=400,
                    code="InvalidParameter.OrderType")
    fe.expect_error(bss.call, "GetSubscriptionPrice", {**base, "ServicePeriodQuantity": 6,
                                                       "ServicePeriodUnit": "Year"}, status=400,
                    code="InvalidParameter")
    fe.expect_error(bss.call, "GetSubscriptionPrice", {**base, "SubscriptionType": "PayAsYouGo"}, status=400,
                    code="InvalidParameter")


# ---------------------------------------------------------------------------------------------
# BSS errors
# ---------------------------------------------------------------------------------------------


def test_bss_error_envelope(server):
    raw = server.raw()

    def bss_raw(action, params):
        r = raw.send_v2(action, params, version=fe.BSS_VERSION)
        return r.status_code, r.json()

    status, body = bss_raw("QueryBill", {"BillingCycle": "2026-13"})
    assert status == 400, body
    assert body["Code"] == "InvalidParameter" and body["Success"] is False and body["Data"] is None, body
    assert "BillingCycle" in body["Message"] and body["RequestId"], body

    status, body = bss_raw("QueryBill", {})
    assert (status, body["Code"], body["Success"], body["Data"]) == (400, "MissingParameter", False, None), body

    # An action BssOpenApi has but this region does not answer: the contract's InvalidAction.NotFound,
    # in the BSS envelope.
    status, body = bss_raw("QueryPrepaidCards", {})
    assert (status, body["Code"], body["Success"], body["Data"]) == (404, "InvalidAction.NotFound", False, None), body
    assert body["RequestId"]

    # The typed SDK raises on the 400 with the code.
    from alibabacloud_bssopenapi20171214 import models as m

    bss = server.bss()
    e = fe.expect_error(bss.typed, "query_bill", m.QueryBillRequest(billing_cycle="2026/01"), status=400,
                        code="InvalidParameter")
    assert "BillingCycle" in e.message
    fe.expect_error(bss.call, "QueryBill", {"BillingCycle": cycle(), "PageSize": 301}, status=400,
                    code="InvalidParameter")
    fe.expect_error(bss.call, "QueryInstanceBill", {"BillingCycle": cycle(), "Granularity": "DAILY"}, status=400,
                    code="MissingParameter")
    fe.expect_error(bss.call, "QueryInstanceBill", {"BillingCycle": "2026-01", "Granularity": "DAILY",
                                                    "BillingDate": "2026-02-01"}, status=400,
                    code="InvalidParameter")

    # An empty month is an empty bill, not an error.
    body = bss.typed("query_bill", m.QueryBillRequest(billing_cycle="2020-02"))
    assert (body.data.billing_cycle, body.data.total_count, body.data.items.item) == ("2020-02", 0, [])


# ---------------------------------------------------------------------------------------------
# Subscriptions
# ---------------------------------------------------------------------------------------------


def test_prepaid_needs_the_whole_price_in_the_balance(server):
    acct = new_account(server, "pre0")
    raw, bss = server.raw(acct), server.bss(acct)
    name = acct["AccountName"]
    ids: list[str] = []
    try:
        # Validation comes first.
        fe.expect_error(raw.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": IMAGE, "InstanceType": NANO,
                                                   "InstanceChargeType": "PrePaid"}, status=400,
                        code="MissingParameter")
        fe.expect_error(prepaid, raw, Period=10, status=400, code="InvalidPeriod")
        fe.expect_error(prepaid, raw, PeriodUnit="Week", status=400, code="InvalidPeriodUnit.ValueNotSupported")
        fe.expect_error(prepaid, raw, SpotStrategy="SpotAsPriceGo", status=400, code="InvalidSpotStrategy")

        # A month costs 77.85 (see NANO_MONTH): with 0.00, then 77.84, it is refused and nothing is created.
        fe.expect_error(prepaid, raw, status=403, code="InvalidAccountStatus.NotEnoughBalance")
        server.top_up(name, "77.84")
        fe.expect_error(prepaid, raw, status=403, code="InvalidAccountStatus.NotEnoughBalance")
        assert fe.all_instance_ids(raw) == []
        assert balance(bss) == "77.84"

        # One more cent buys it, to the last cent.
        server.top_up(name, "0.01")
        res = prepaid(raw)
        ids = res["InstanceIdSets"]["InstanceIdSet"]
        assert dec(res["TradePrice"]) == NANO_MONTH, res
        assert balance(bss) == "0.00"

        # Converted to pay-as-you-go a moment later, the unused part comes back: 77.85 × (left / term),
        # rounded once to a cent, is all of it for the first two minutes or so of a month-long term
        # (half a cent of 77.85 is about 1/15570 of the ~2.6 million seconds: ~170 s).
        res = to_post_paid(raw, ids)
        assert res["FeeOfInstances"]["FeeOfInstance"] == [{"InstanceId": ids[0], "Fee": "-77.85", "Currency": "CNY"}]
        assert balance(bss) == "77.85"
        fe.force_delete(raw, ids)
        fe.wait_gone(raw, ids)
    finally:
        release_subscriptions(raw, ids)


def test_prepaid_lifecycle_renewal_conversion_and_invoice(server):
    from alibabacloud_ecs20140526 import models as ecs

    # 200.00 pays for the first month and a renewal (2 × 77.85 = 155.70) but not a third month.
    acct = new_account(server, "pre", top_up="200")
    tea, raw, bss = server.tea(acct), server.raw(acct), server.bss(acct)
    ids: list[str] = []
    try:
        # The quote: DescribePrice for a month of what RunInstances below makes. The image is 1 GiB,
        # so without SystemDisk.Size the system disk is max(40, 1) = 40 GiB of cloud_essd.
        image = raw.call("DescribeImages", {"RegionId": fe.REGION, "ImageId": IMAGE})["Images"]["Image"][0]
        assert image["Size"] == 1, image
        quote = tea.sdk.describe_price(ecs.DescribePriceRequest(
            region_id=fe.REGION, instance_type=NANO, price_unit="Month", period=1, image_id=IMAGE,
            system_disk=ecs.DescribePriceRequestSystemDisk(category="cloud_essd"))).body.price_info.price
        # 0.05105 × 730 = 37.2665 and 40 × 0.00139 × 730 = 40.588: 77.8545.
        parts = {d.resource: dec(d.trade_price) for d in quote.detail_infos.detail_info}
        assert (parts["instanceType"], parts["systemDisk"]) == (Decimal("37.2665"), Decimal("40.588")), parts
        assert dec(quote.trade_price) == NANO_MONTH_QUOTE
        # The image's own 1 GiB is below cloud_essd's 20 GiB minimum: not a size it can be quoted at.
        fe.expect_error(tea.call, "DescribePrice", {"RegionId": fe.REGION, "InstanceType": NANO, "PriceUnit": "Month",
                                                    "Period": 1, "SystemDisk.Category": "cloud_essd",
                                                    "SystemDisk.Size": image["Size"]},
                        status=404, code="InvalidSystemDiskSize.LessThanMinSize")

        run = tea.typed("run_instances", ecs.RunInstancesRequest(
            region_id=fe.REGION, image_id=IMAGE, instance_type=NANO, amount=1, instance_charge_type="PrePaid",
            period=1, period_unit="Month"))
        ids = run.instance_id_sets.instance_id_set
        # Charged exactly the quote, rounded to a cent: 77.85; 200.00 − 77.85 = 122.15.
        assert dec(run.trade_price) == cents(NANO_MONTH_QUOTE) == NANO_MONTH
        assert balance(bss) == "122.15"
        fe.wait_status(raw, ids, "Running")
        inst = fe.describe(raw, ids)[0]
        assert inst["InstanceChargeType"] == "PrePaid"
        assert inst["ExpiredTime"] == add_months(inst["CreationTime"], 1), inst
        # The system disk it was charged for is the one it has.
        disks = raw.call("DescribeDisks", {"RegionId": fe.REGION, "InstanceId": ids[0]})["Disks"]["Disk"]
        assert [(d["Type"], d["Category"], d["Size"]) for d in disks] == [
            ("system", "cloud_essd", SYSTEM_DISK_GIB)], disks

        month = cycle()
        from alibabacloud_bssopenapi20171214 import models as m

        bill = bss.typed("query_bill", m.QueryBillRequest(billing_cycle=month, type="SubscriptionOrder")).data
        assert bill.total_count == 1
        it = bill.items.item[0]
        assert (it.item, it.subscription_type, it.product_code, it.status, it.currency) == (
            "SubscriptionOrder", "Subscription", "ecs", "PayOff", "CNY")
        assert (dec(it.pretax_amount), dec(it.payment_amount), dec(it.outstanding_amount)) == (
            NANO_MONTH, NANO_MONTH, Decimal("0"))

        # Per instance: the order's amount on its line (on the compute item when split by item).
        qib = bss.call("QueryInstanceBill", {"BillingCycle": month})["Data"]
        lines = [x for x in qib["Items"]["Item"] if x["InstanceID"] == ids[0]]
        assert [(x["SubscriptionType"], dec(x["PretaxAmount"])) for x in lines] == [("Subscription", NANO_MONTH)]
        dib = bss.typed("describe_instance_bill", m.DescribeInstanceBillRequest(
            billing_cycle=month, instance_id=ids[0], is_billing_item=True)).data
        by_item = {x.billing_item: x for x in dib.items}
        assert set(by_item) == {"Cloud server configuration", "System disk"}, [x.to_map() for x in dib.items]
        compute = by_item["Cloud server configuration"]
        assert (compute.instance_id, compute.subscription_type, compute.instance_spec) == (ids[0], "Subscription", NANO)
        assert dec(compute.pretax_amount) == NANO_MONTH
        assert dec(by_item["System disk"].pretax_amount) == 0

        # An unexpired subscription cannot be deleted.
        fe.expect_error(raw.call, "DeleteInstance", {"InstanceId": ids[0], "Force": True}, status=403,
                        code="ChargeTypeViolation")
        fe.expect_error(fe.force_delete, raw, ids, status=403, code="ChargeTypeViolation")

        # Auto-renewal can be set (1, 2, 3, 6, 12... months; not 5).
        raw.call("ModifyInstanceAutoRenewAttribute", {"RegionId": fe.REGION, "InstanceId": ids[0],
                                                      "AutoRenew": True, "Duration": 1})
        fe.expect_error(raw.call, "ModifyInstanceAutoRenewAttribute",
                        {"RegionId": fe.REGION, "InstanceId": ids[0], "AutoRenew": True, "Duration": 5},
                        status=400, code="InvalidDuration")
        raw.call("ModifyInstanceAutoRenewAttribute", {"RegionId": fe.REGION, "InstanceId": ids[0],
                                                      "RenewalStatus": "Normal"})

        # Renewing a month charges another 77.85 (122.15 → 44.30) and moves ExpiredTime a month on.
        renew = raw.call("RenewInstance", {"InstanceId": ids[0], "Period": 1, "PeriodUnit": "Month"})
        assert dec(renew["TradePrice"]) == NANO_MONTH, renew
        assert balance(bss) == "44.30"
        inst = fe.describe(raw, ids)[0]
        assert inst["ExpiredTime"] == add_months(inst["CreationTime"], 2), inst
        # 44.30 does not pay for a third month (77.85).
        fe.expect_error(tea.typed, "renew_instance", ecs.RenewInstanceRequest(instance_id=ids[0], period=1,
                                                                              period_unit="Month"),
                        status=403, code="InvalidAccountStatus.NotEnoughBalance")

        bill = bss.call("QueryBill", {"BillingCycle": month, "SubscriptionType": "Subscription"})["Data"]
        assert [(x["Item"], dec(x["PretaxAmount"]), x["Status"]) for x in bill["Items"]["Item"]] == [
            ("SubscriptionOrder", NANO_MONTH, "PayOff")] * 2
        overview = bss.typed("query_bill_overview", m.QueryBillOverviewRequest(billing_cycle=month)).data
        subs = [x for x in overview.items.item if x.subscription_type == "Subscription"]
        assert len(subs) == 1
        # 2 × 77.85 = 155.70, all paid.
        assert (dec(subs[0].pretax_amount), dec(subs[0].payment_amount), dec(subs[0].outstanding_amount)) == (
            Decimal("155.70"), Decimal("155.70"), Decimal("0"))

        # To pay-as-you-go: the two unused months come back, 155.70 (a few seconds of a two-month
        # term round to nothing): 44.30 + 155.70 = 200.00.
        conv = tea.typed("modify_instance_charge_type", ecs.ModifyInstanceChargeTypeRequest(
            region_id=fe.REGION, instance_ids=json.dumps(ids), instance_charge_type="PostPaid"))
        assert [(f.instance_id, f.fee) for f in conv.fee_of_instances.fee_of_instance] == [(ids[0], "-155.70")]
        assert balance(bss) == "200.00"
        inst = fe.describe(raw, ids)[0]
        assert inst["InstanceChargeType"] == "PostPaid"
        fe.expect_error(to_post_paid, raw, ids, status=403, code="ChargeTypeViolation")
        fe.force_delete(raw, ids)
        fe.wait_gone(raw, ids)
    finally:
        release_subscriptions(raw, ids)

    # The invoice of the month from the command line: the ledger with what each charge was paid.
    name = acct["AccountName"]
    out = server.cli("billing", "invoice", name, "--month", month, "--data-dir", str(server.data_dir))
    assert out.returncode == 0, (out.stdout, out.stderr)
    text = out.stdout
    assert month in text and name in text and "CNY" in text, text
    # Ledger lines: time, kind, amount[, paid, outstanding], detail.
    ledger_lines = [ln.split() for ln in text.splitlines() if ln.split()[:1] and ln.split()[0][:1].isdigit()]
    assert [ln[1:3] for ln in ledger_lines] == [["TopUp", "200.00"], ["Subscription", "-77.85"],
                                                ["Renewal", "-77.85"], ["Refund", "155.70"]], text
    assert all(ids[0] in ln for ln in ledger_lines[1:]), text
    closing = [ln for ln in text.splitlines() if ln.startswith("Closing balance")]
    assert closing and closing[0].split()[-1] == "200.00", text

    out = server.cli("billing", "invoice", name, "--month", month, "--csv", "--data-dir", str(server.data_dir))
    assert out.returncode == 0, (out.stdout, out.stderr)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    ledger = [(r["kind"], r["instance_id"], r["amount"], r["paid"], r["outstanding"], r["currency"])
              for r in rows if r["section"] == "ledger"]
    assert ledger == [
        ("TopUp", "", "200.00", "", "", "CNY"),
        ("Subscription", ids[0], "-77.85", "77.85", "0.00", "CNY"),
        ("Renewal", ids[0], "-77.85", "77.85", "0.00", "CNY"),
        ("Refund", ids[0], "155.70", "", "", "CNY"),
    ], out.stdout
    # Usage: the instance ran a second or two (as a subscription, then pay-as-you-go): nothing to charge.
    usage = [(r["instance_id"], r["instance_type"], r["amount"]) for r in rows if r["section"] == "usage"]
    assert all(u == (ids[0], NANO, "0.00") for u in usage), out.stdout

    for bad in (["--month", "2026-13"], ["--month", month, "--account-typo"]):
        assert server.cli("billing", "invoice", name, *bad, "--data-dir", str(server.data_dir)).returncode != 0
    out = server.cli("billing", "invoice", fe.unique("nobody"), "--month", month, "--data-dir", str(server.data_dir))
    assert out.returncode != 0, out.stdout


def test_instance_bill_of_a_running_instance_stops_at_now(server):
    """A pay-as-you-go instance that has run a few seconds has used a few seconds, not the rest of
    the month (or of the day)."""
    acct = new_account(server, "usage")
    raw, bss = server.raw(acct), server.bss(acct)
    t0 = time.time()
    ids = fe.run_instances(raw)
    try:
        fe.wait_status(raw, ids, "Running")
        month = cycle()
        items = bss.call("DescribeInstanceBill", {"BillingCycle": month, "InstanceID": ids[0],
                                                  "IsBillingItem": True})["Data"]["Items"]
        elapsed = time.time() - t0 + 1
        by_item = {x["BillingItem"]: x for x in items}
        assert set(by_item) == {"Cloud server configuration", "System disk"}, items
        compute, disk = by_item["Cloud server configuration"], by_item["System disk"]
        for line in (compute, disk):
            assert int(line["ServicePeriod"]) <= elapsed, (elapsed, line)
        # A few seconds at 0.05105 (and 0.0556 for the 40 GiB disk) per hour: 0.00.
        assert dec(compute["PretaxAmount"]) == cents(int(compute["ServicePeriod"]) * NANO_HOUR / 3600) == 0

        day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
        daily = bss.call("QueryInstanceBill", {"BillingCycle": month, "Granularity": "DAILY",
                                               "BillingDate": day})["Data"]["Items"]["Item"]
        mine = [x for x in daily if x["InstanceID"] == ids[0]]
        assert len(mine) == 1 and mine[0]["BillingDate"] == day, daily
        assert int(mine[0]["ServicePeriod"]) <= time.time() - t0 + 1, mine
    finally:
        fe.force_delete(raw, ids)
        fe.wait_gone(raw, ids)


def test_instance_bill_list_prices_are_the_hourly_prices(server):
    acct = new_account(server, "list")
    raw, bss = server.raw(acct), server.bss(acct)
    ids = fe.run_instances(raw)
    try:
        fe.wait_status(raw, ids, "Running")
        items = bss.call("DescribeInstanceBill", {"BillingCycle": cycle(), "InstanceID": ids[0],
                                                  "IsBillingItem": True})["Data"]["Items"]
        by_item = {x["BillingItem"]: x for x in items}
        assert set(by_item) == {"Cloud server configuration", "System disk"}, items
        compute, disk = by_item["Cloud server configuration"], by_item["System disk"]
        # The price book's hourly prices: 0.05105 for the nano, 40 GiB × 0.00139 = 0.0556 for its disk.
        assert (compute["ListPrice"], compute["ListPriceUnit"]) == ("0.05105", "CNY/Hour"), compute
        assert (disk["ListPrice"], disk["ListPriceUnit"]) == ("0.0556", "CNY/Hour"), disk
    finally:
        fe.force_delete(raw, ids)
        fe.wait_gone(raw, ids)


# ---------------------------------------------------------------------------------------------
# Settlement and arrears (own server, short timings)
# ---------------------------------------------------------------------------------------------

# Room for one ecs.g7.32xlarge (128 vCPU, 512 GiB; busybox uses next to nothing of it) and a nano.
ARREARS_CONFIG = """
[host]
cpus = 130
memory_mib = 525312
reserved_cpus = 0
reserved_memory_mib = 0
cpu_allocation_ratio = 1.0
memory_allocation_ratio = 1.0

[billing]
settle_every_seconds = 2
arrears_stop_after_seconds = 3
arrears_release_after_seconds = 3
market_every_seconds = 1
spot_notice_seconds = 2
"""


def test_settlement_arrears_stop_and_release(make_server):
    from alibabacloud_bssopenapi20171214 import models as m

    srv = make_server("arrears", config=ARREARS_CONFIG)
    acct = new_account(srv, "payg", top_up="0.03")
    raw, bss = srv.raw(acct), srv.bss(acct)
    ids = fe.run_instances(raw, instance_type="ecs.g7.32xlarge")
    # 33.8944 + 0.0556 (its 40 GiB disk) = 33.95 per hour is 0.01886 every 2-second settlement: 0.03
    # lasts a settlement or two.
    fe.wait_status(raw, ids, "Running")

    def in_arrears():
        b = balance(bss)
        return b if b.startswith("-") else None

    owed = wait_for(in_arrears, 15, "the balance to go negative")
    # In arrears, before the stop: no pay-as-you-go start, no new pay-as-you-go instance.
    fe.expect_error(raw.call, "StartInstance", {"InstanceId": ids[0]}, status=400, code="Account.Arrearage")
    fe.expect_error(fe.run_instances, raw, status=400, code="Account.Arrearage")

    # arrears_stop_after_seconds later: stopped, economical, locked `financial`, with a release time.
    def stopped():
        i = fe.describe(raw, ids)[0]
        return i if i["Status"] == "Stopped" and i["OperationLocks"]["LockReason"] else None

    inst = wait_for(stopped, 15, "the arrears stop")
    assert inst["OperationLocks"]["LockReason"] == [{"LockReason": "financial"}], inst
    assert inst["StoppedMode"] == "StopCharging", inst
    assert inst["AutoReleaseTime"], inst
    fe.expect_error(raw.call, "StartInstance", {"InstanceId": ids[0]}, status=403, code="IncorrectInstanceStatus")
    # ... and arrears_release_after_seconds after that, released.
    fe.wait_gone(raw, ids, timeout=15)

    month = cycle()

    def instance_lines():
        return bss.call("QueryInstanceBill", {"BillingCycle": month, "IsBillingItem": True})["Data"]["Items"]["Item"]

    lines = {x["BillingItem"]: x for x in instance_lines() if x["InstanceID"] == ids[0]}
    compute, disk = lines["Cloud server configuration"], lines["System disk"]
    # Rated per second and rounded per line: seconds × 33.8944 / 3600 (the 40 GiB disk: × 0.0556 / 3600).
    exact_compute = int(compute["ServicePeriod"]) * G7_32X_HOUR / 3600
    exact_disk = int(disk["ServicePeriod"]) * DISK_HOUR / 3600
    assert dec(compute["PretaxAmount"]) == cents(exact_compute), compute
    assert dec(disk["PretaxAmount"]) == cents(exact_disk), disk
    assert compute["SubscriptionType"] == "PayAsYouGo" and compute["InstanceSpec"] == "ecs.g7.32xlarge"
    # The compute stopped being charged at the stop, the disk only at the release.
    assert int(compute["ServicePeriod"]) < int(disk["ServicePeriod"]), lines
    # The settlements add up to the exact total rounded once, once the last one (after the release) is in.
    total = cents(exact_compute + exact_disk)

    def settled():
        items = bss.call("QueryBill", {"BillingCycle": month, "Type": "PayAsYouGoBill"})["Data"]["Items"]["Item"]
        return items if sum(dec(x["PretaxAmount"]) for x in items) == total else None

    items = wait_for(settled, 10, f"settlements adding up to {total}")
    bal = dec(balance(bss))
    # All of the 0.03 paid the oldest charges first; the rest is outstanding and is the debt.
    assert sum(dec(x["PaymentAmount"]) for x in items) == Decimal("0.03"), items
    assert sum(dec(x["OutstandingAmount"]) for x in items) == -bal == total - Decimal("0.03"), items
    assert dec(owed) < 0
    for x in items:
        assert (x["Item"], x["SubscriptionType"], x["ProductCode"]) == ("PayAsYouGoBill", "PayAsYouGo", "ecs"), x
        assert dec(x["PretaxAmount"]) == dec(x["PaymentAmount"]) + dec(x["OutstandingAmount"]), x
        assert x["Status"] == ("PayOff" if dec(x["OutstandingAmount"]) == 0 else "Unpaid"), x
        assert bool(x["PaymentTime"]) == (x["Status"] == "PayOff"), x
        start = dt.datetime.strptime(x["UsageStartTime"], "%Y-%m-%dT%H:%M:%SZ")
        end = dt.datetime.strptime(x["UsageEndTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert (end - start).total_seconds() == 2, x  # settle_every_seconds
    assert items[0]["Status"] == "PayOff" and items[-1]["Status"] == "Unpaid", items

    overview = bss.typed("query_bill_overview", m.QueryBillOverviewRequest(billing_cycle=month)).data.items.item
    assert [(o.subscription_type, dec(o.pretax_amount), dec(o.payment_amount), dec(o.outstanding_amount))
            for o in overview] == [("PayAsYouGo", total, Decimal("0.03"), total - Decimal("0.03"))]

    # Paying the debt clears the arrears: every charge is paid off, and pay-as-you-go can be bought again.
    srv.top_up(acct["AccountName"], str(-bal))
    assert balance(bss) == "0.00"
    items = bss.call("QueryBill", {"BillingCycle": month, "Type": "PayAsYouGoBill"})["Data"]["Items"]["Item"]
    assert {x["Status"] for x in items} == {"PayOff"}, items
    assert sum(dec(x["PaymentAmount"]) for x in items) == total
    again = fe.run_instances(raw)
    fe.force_delete(raw, again)
    fe.wait_gone(raw, again)


# ---------------------------------------------------------------------------------------------
# Spot market (own server, a small zone)
# ---------------------------------------------------------------------------------------------

# A 4-vCPU, 16 GiB zone. Spot price = pay-as-you-go × (10% + 90% × u²), rounded up to a whole
# percent, u = used fraction of the scarcest resource:
#   empty                            u = 0                10%
#   + a nano (1 vCPU)                u = 1/4              10 + ⌈5.625⌉  = 16%
#   + a g7.large (2 vCPU, 8 GiB)     u = 3/4              10 + ⌈50.625⌉ = 61%
#   the g7.large alone               u = 1/2              10 + ⌈22.5⌉   = 33%
SPOT_CONFIG = """
[host]
cpus = 4
memory_mib = 16384
reserved_cpus = 0
reserved_memory_mib = 0
cpu_allocation_ratio = 1.0
memory_allocation_ratio = 1.0

[billing]
market_every_seconds = 1
spot_notice_seconds = 2
"""


def test_spot_price_follows_the_zone_and_outbid_instances_are_reclaimed(make_server):
    from alibabacloud_ecs20140526 import models as ecs

    srv = make_server("spot", config=SPOT_CONFIG)
    acct = new_account(srv, "spot")
    raw, tea = srv.raw(acct), srv.tea(acct)

    def history(instance_type=NANO, **extra):
        return raw.call("DescribeSpotPriceHistory", {"RegionId": fe.REGION, "NetworkType": "vpc",
                                                     "InstanceType": instance_type, **extra})

    def prices(**extra):
        return [dec(p["SpotPrice"]) for p in history(**extra)["SpotPrices"]["SpotPriceType"]]

    # Empty zone: 10% of 0.05105 = 0.005105.
    h = history()
    assert (h["Currency"], h["NextOffset"]) == ("CNY", 0)
    [p] = h["SpotPrices"]["SpotPriceType"]
    assert (p["ZoneId"], p["InstanceType"], dec(p["SpotPrice"]), dec(p["OriginPrice"])) == (
        fe.ZONE, NANO, Decimal("0.005105"), NANO_HOUR)
    fe.expect_error(raw.call, "DescribeSpotPriceHistory", {"RegionId": fe.REGION, "InstanceType": NANO},
                    status=400, code="MissingParameter")

    # DescribePrice for a spot g7.large: 10% of 0.5296 = 0.05296, a discount of 0.47664; the 40 GiB
    # ESSD (0.0556) is not discounted: 0.10856 an hour.
    price = tea.sdk.describe_price(ecs.DescribePriceRequest(
        region_id=fe.REGION, instance_type="ecs.g7.large", price_unit="Hour", spot_strategy="SpotAsPriceGo",
        system_disk=ecs.DescribePriceRequestSystemDisk(category="cloud_essd", size=40))).body.price_info.price
    parts = {d.resource: (dec(d.original_price), dec(d.discount_price), dec(d.trade_price))
             for d in price.detail_infos.detail_info}
    assert parts["instanceType"] == (G7_LARGE_HOUR, Decimal("0.47664"), Decimal("0.05296"))
    assert parts["systemDisk"] == (Decimal("0.0556"), Decimal("0"), Decimal("0.0556"))
    assert (dec(price.original_price), dec(price.discount_price), dec(price.trade_price)) == (
        Decimal("0.5852"), Decimal("0.47664"), Decimal("0.10856"))

    spot = dict(SpotStrategy="SpotWithPriceLimit", SpotDuration=0, SpotInterruptionBehavior="Terminate")
    # A limit under the current 0.005105 is refused.
    fe.expect_error(fe.run_instances, raw, SpotPriceLimit="0.005", **spot, status=400,
                    code="InvalidSpotPriceLimit.LowerThanPublicPrice")
    # 0.0082 covers the 16% (0.008168) the zone will be at with this instance in it.
    ids = fe.run_instances(raw, SpotPriceLimit="0.0082", **spot)
    fe.wait_status(raw, ids, "Running")
    inst = fe.describe(raw, ids)[0]
    assert (inst["SpotStrategy"], dec(inst["SpotPriceLimit"]), inst["SpotDuration"]) == (
        "SpotWithPriceLimit", Decimal("0.0082"), 0), inst
    assert inst["OperationLocks"]["LockReason"] == [] and inst["AutoReleaseTime"] == "", inst
    wait_for(lambda: Decimal("0.008168") in prices(), 10, "the market to price the nano in (16%)")
    assert fe.describe(raw, ids)[0]["OperationLocks"]["LockReason"] == []

    # A g7.large fills the zone to 3/4: 61% of 0.05105 = 0.031141 (0.0311405 rounded half up), above
    # the limit: the spot instance is locked Recycling with a release time, then released.
    big = fe.run_instances(raw, instance_type="ecs.g7.large")

    def recycling():
        i = fe.describe(raw, ids)
        return i[0] if i and i[0]["OperationLocks"]["LockReason"] else None

    inst = wait_for(recycling, 10, "the spot instance to be outbid")
    assert inst["OperationLocks"]["LockReason"] == [{"LockReason": "Recycling"}], inst
    assert inst["AutoReleaseTime"], inst
    fe.wait_gone(raw, ids, timeout=10)

    # With the nano gone the g7.large alone holds half the zone: 33% of 0.05105 = 0.016847 (0.0168465).
    wait_for(lambda: prices()[-1:] == [Decimal("0.016847")], 10, "the market to fall back to 33%")
    assert prices() == [Decimal("0.005105"), Decimal("0.008168"), Decimal("0.031141"), Decimal("0.016847")]
    # The same steps for a g7.large: 10%, 16%, 61%, 33% of 0.5296.
    assert prices(instance_type="ecs.g7.large", ZoneId=fe.ZONE) == [
        Decimal("0.05296"), Decimal("0.084736"), Decimal("0.323056"), Decimal("0.174768")]
    h = history(Offset=2)
    assert [dec(p["SpotPrice"]) for p in h["SpotPrices"]["SpotPriceType"]] == [Decimal("0.031141"),
                                                                                 Decimal("0.016847")]
    assert h["NextOffset"] == 0
    stamps = [p["Timestamp"] for p in history()["SpotPrices"]["SpotPriceType"]]
    assert stamps == sorted(stamps), stamps

    fe.force_delete(raw, big)
    fe.wait_gone(raw, big)


def test_spot_interrupted_with_stop_stays_stopped(make_server):
    """SpotInterruptionBehavior=Stop: an outbid instance is stopped (economical mode) instead of
    released, and then stays an ordinary stopped instance: no more Recycling locks."""
    srv = make_server("spotstop", config=SPOT_CONFIG)
    acct = new_account(srv, "spotstop")
    raw = srv.raw(acct)
    ids = fe.run_instances(raw, SpotStrategy="SpotWithPriceLimit", SpotPriceLimit="0.0082", SpotDuration=0,
                           SpotInterruptionBehavior="Stop")
    fe.wait_status(raw, ids, "Running")

    def nano_prices():
        h = raw.call("DescribeSpotPriceHistory", {"RegionId": fe.REGION, "NetworkType": "vpc", "InstanceType": NANO})
        return [dec(p["SpotPrice"]) for p in h["SpotPrices"]["SpotPriceType"]]

    # 16% with the nano in (0.008168, under its 0.0082 limit); 61% (0.031141) once a g7.large joins.
    wait_for(lambda: Decimal("0.008168") in nano_prices(), 10, "the market to price the nano in (16%)")
    big = fe.run_instances(raw, instance_type="ecs.g7.large")

    def locked():
        i = fe.describe(raw, ids)[0]
        return i if i["OperationLocks"]["LockReason"] else None

    inst = wait_for(locked, 10, "the spot instance to be outbid")
    assert inst["OperationLocks"]["LockReason"] == [{"LockReason": "Recycling"}] and inst["AutoReleaseTime"], inst

    def stopped():
        i = fe.describe(raw, ids)[0]
        return i if i["Status"] == "Stopped" and not i["OperationLocks"]["LockReason"] else None

    inst = wait_for(stopped, 10, "the interrupted spot instance to be stopped")
    assert (inst["StoppedMode"], inst["AutoReleaseTime"]) == ("StopCharging", ""), inst
    # It is not reclaimed a second time: over three billing ticks (market_every_seconds = 1) and more
    # than the 2-second notice, it stays stopped, unlocked and listed.
    seen = set()
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        i = fe.describe(raw, ids)[0]
        seen.add((i["Status"], json.dumps(i["OperationLocks"]["LockReason"]), i["AutoReleaseTime"]))
        time.sleep(0.1)
    assert seen == {("Stopped", "[]", "")}, seen
    fe.force_delete(raw, ids + big)
    fe.wait_gone(raw, ids + big)
