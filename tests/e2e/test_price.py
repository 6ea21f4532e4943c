"""DescribePrice from the region's price book (catalog/prices.toml), through the typed SDK: pay-as-you-go
per hour and subscriptions per month or year (spot prices: test_billing.py)."""

import pytest

import feiyun_e2e as fe


def test_describe_price_pay_as_you_go(tea):
    from alibabacloud_ecs20140526 import models as ecs

    req = ecs.DescribePriceRequest(
        region_id=fe.REGION, resource_type="instance", instance_type="ecs.g7.large", price_unit="Hour",
        system_disk=ecs.DescribePriceRequestSystemDisk(category="cloud_essd", size=40),
        internet_charge_type="PayByBandwidth", internet_max_bandwidth_out=7)
    price = tea.sdk.describe_price(req).body.price_info.price
    # By hand from catalog/prices.toml: g7.large 2 × 0.1764 + 8 × 0.0221 = 0.5296 per hour;
    # 40 GiB ESSD × 0.00139 = 0.0556; 7 Mbit/s = 5 × 0.063 + 2 × 0.25 = 0.815 (the 5 Mbit/s tier).
    parts = {d.resource: d.trade_price for d in price.detail_infos.detail_info}
    assert parts["instanceType"] == pytest.approx(0.5296)
    assert parts["systemDisk"] == pytest.approx(0.0556)
    assert parts["bandwidth"] == pytest.approx(0.815)
    assert price.trade_price == pytest.approx(1.4002)
    assert price.currency == "CNY"


def test_describe_price_subscription(tea):
    from alibabacloud_ecs20140526 import models as ecs

    def price(unit, period):
        req = ecs.DescribePriceRequest(
            region_id=fe.REGION, resource_type="instance", instance_type="ecs.g7.large", price_unit=unit,
            period=period, system_disk=ecs.DescribePriceRequestSystemDisk(category="cloud_essd", size=40))
        return tea.sdk.describe_price(req).body.price_info

    # A month is 730 hours: g7.large 0.5296 × 730 = 386.608, 40 GiB ESSD 0.0556 × 730 = 40.588;
    # 427.196, no discount under 12 months.
    month = price("Month", 1)
    assert month.price.original_price == pytest.approx(427.196)
    assert month.price.discount_price == pytest.approx(0.0)
    assert month.price.trade_price == pytest.approx(427.196)
    assert month.rules.rule == []

    # A year: 4639.296 + 487.056 = 5126.352 list, 15% off (768.9528): 4357.3992.
    year = price("Year", 1)
    assert year.price.original_price == pytest.approx(5126.352)
    assert year.price.discount_price == pytest.approx(768.9528)
    assert year.price.trade_price == pytest.approx(4357.3992)
    assert year.price.currency == "CNY"
    parts = {d.resource: d for d in year.price.detail_infos.detail_info}
    g7 = parts["instanceType"]
    assert (g7.original_price, g7.discount_price, g7.trade_price) == pytest.approx((4639.296, 695.8944, 3943.4016))
    assert len(g7.sub_rules.rule) == 1 and "15%" in g7.sub_rules.rule[0].description
    assert len(year.rules.rule) == 1 and "15%" in year.rules.rule[0].description
    # Twelve months are a year.
    twelve = price("Month", 12)
    assert (twelve.price.original_price, twelve.price.trade_price) == pytest.approx((5126.352, 4357.3992))


def test_describe_price_refuses_what_is_not_offered(tea):
    base = {"RegionId": fe.REGION, "InstanceType": "ecs.g7.large"}
    fe.expect_error(tea.call, "DescribePrice", {**base, "PriceUnit": "Week"}, status=400,
                    code="InvalidPriceUnit.ValueNotSupported")
    fe.expect_error(tea.call, "DescribePrice", {**base, "PriceUnit": "Month", "Period": 10}, status=400,
                    code="InvalidPeriod")
    fe.expect_error(tea.call, "DescribePrice", {**base, "PriceUnit": "Month", "SpotStrategy": "SpotAsPriceGo"},
                    status=400, code="InvalidSpotStrategy")
    fe.expect_error(tea.call, "DescribePrice", {**base, "InstanceType": "ecs.nope"}, status=400,
                    code="InvalidInstanceType.ValueNotSupported")
    fe.expect_error(tea.call, "DescribePrice", {"RegionId": fe.REGION}, status=400, code="MissingParameter")
