//! BssOpenApi 2017-12-14: balances, bills and prices. Every action reads the ledger or the price
//! book, so none runs on the event loop.

use super::{int, one_of, opt, req, Action, Param, Product, ProductKind, Region, BOOL, STR};

const PRODUCT_CODE: Param = opt("ProductCode", STR, "The product billed: ecs is the only one here.");
const BILLING_CYCLE: Param = req("BillingCycle", STR, "The month, YYYY-MM.");
const SUBSCRIPTION_TYPE: Param =
    opt("SubscriptionType", one_of(&["Subscription", "PayAsYouGo"]), "Only charges of this kind.");
const HIDE_ZERO: Param = opt("IsHideZeroCharge", BOOL, "Leave out lines of zero.");
const PAGE_NUM: Param = opt("PageNum", int(1, i32::MAX as i64), "Page to return, from 1.");
const PAGE_SIZE: Param = opt("PageSize", int(1, 300), "Entries per page (default 20).");
const GRANULARITY: Param =
    opt("Granularity", one_of(&["MONTHLY", "DAILY"]), "MONTHLY (default) or DAILY, for the day of BillingDate.");
const BILLING_DATE: Param = opt("BillingDate", STR, "The day, YYYY-MM-DD, required with Granularity=DAILY.");
const BILLING_ITEM: Param = opt("IsBillingItem", BOOL, "One line per billable item instead of per instance.");
const REGION: Param = opt("Region", STR, "The region; when given it must be the one this server runs.");
const MODULE_CODE: Param = req(
    "ModuleList.N.ModuleCode",
    STR,
    "What to price: InstanceType, SystemDisk, DataDisk or InternetMaxBandwidthOut.",
)
.upto(50);
const MODULE_CONFIG: Param =
    req("ModuleList.N.Config", STR, "The module's attributes, AA:aa,BB:bb (e.g. InstanceType:ecs.g7.large).").upto(50);

pub(super) static PRODUCT: Product = Product {
    kind: ProductKind::Bss,
    code: "BssOpenApi",
    version: "2017-12-14",
    summary: "Billing: balances, bills and prices, in the BSS envelope.",
    actions: &[
        Action::blocking_query("QueryAccountBalance", "The account's available balance.", Region::Absent, &[]),
        Action::blocking_query(
            "QueryBill",
            "The charges of a month, by page.",
            Region::Absent,
            &[
                BILLING_CYCLE,
                PRODUCT_CODE,
                SUBSCRIPTION_TYPE,
                opt(
                    "Type",
                    one_of(&["SubscriptionOrder", "PayAsYouGoBill", "Refund", "Adjustment"]),
                    "Only charges of this type.",
                ),
                HIDE_ZERO,
                PAGE_NUM,
                PAGE_SIZE,
            ],
        ),
        Action::blocking_query(
            "QueryBillOverview",
            "The charges of a month summed per kind.",
            Region::Absent,
            &[BILLING_CYCLE, PRODUCT_CODE, SUBSCRIPTION_TYPE],
        ),
        Action::blocking_query(
            "QueryInstanceBill",
            "Usage per instance of a month or a day, by page.",
            Region::Absent,
            &[
                BILLING_CYCLE,
                PRODUCT_CODE,
                GRANULARITY,
                BILLING_DATE,
                BILLING_ITEM,
                SUBSCRIPTION_TYPE,
                HIDE_ZERO,
                PAGE_NUM,
                PAGE_SIZE,
            ],
        ),
        Action::blocking_query(
            "DescribeInstanceBill",
            "Usage per instance of a month or a day, by token.",
            Region::Absent,
            &[
                BILLING_CYCLE,
                PRODUCT_CODE,
                GRANULARITY,
                BILLING_DATE,
                BILLING_ITEM,
                SUBSCRIPTION_TYPE,
                HIDE_ZERO,
                opt("InstanceID", STR, "Only this instance."),
                opt("MaxResults", int(1, 300), "Entries per page (default 20)."),
                opt("NextToken", STR, "Where the previous page ended."),
            ],
        ),
        Action::blocking_query(
            "GetPayAsYouGoPrice",
            "Pay-as-you-go prices of pricing modules.",
            Region::Absent,
            &[
                PRODUCT_CODE.required(),
                req("SubscriptionType", STR, "PayAsYouGo."),
                REGION,
                MODULE_CODE,
                MODULE_CONFIG,
                opt("ModuleList.N.PriceType", STR, "Price per Hour (default), Month or Year.").upto(50),
            ],
        ),
        Action::blocking_query(
            "GetSubscriptionPrice",
            "Subscription prices of pricing modules for a term.",
            Region::Absent,
            &[
                PRODUCT_CODE.required(),
                req("SubscriptionType", STR, "Subscription."),
                req("OrderType", STR, "NewOrder or Renewal (Upgrade is not sold here)."),
                REGION,
                MODULE_CODE,
                MODULE_CONFIG,
                opt("ServicePeriodQuantity", int(1, 60), "The term (default 1)."),
                opt("ServicePeriodUnit", one_of(&["Month", "Year"]), "Unit of the term (default Month)."),
                opt("Quantity", int(1, 1000), "How many (default 1)."),
            ],
        ),
    ],
};
