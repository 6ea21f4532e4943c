"""DescribePrice from the region's price book (catalog/prices.toml), through the typed SDK."""

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


def test_describe_price_refuses_what_is_not_offered(tea):
    base = {"RegionId": fe.REGION, "InstanceType": "ecs.g7.large"}
    fe.expect_error(tea.call, "DescribePrice", {**base, "PriceUnit": "Year"}, status=400,
                    code="InvalidPriceUnit.NotSupported")
    fe.expect_error(tea.call, "DescribePrice", {**base, "InstanceType": "ecs.nope"}, status=400,
                    code="InvalidInstanceType.ValueNotSupported")
    fe.expect_error(tea.call, "DescribePrice", {"RegionId": fe.REGION}, status=400, code="MissingParameter")
