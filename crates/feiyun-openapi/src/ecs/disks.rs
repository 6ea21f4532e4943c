//! Disks on the wire: the `DataDisk.N.*` parameters.

use feiyun_domain::storage::DiskCategory;

use crate::error::ApiError;
use crate::params::Params;

/// The data disks a price is asked for (DescribePrice `DataDisk.N.Category`, `DataDisk.N.Size`):
/// (category, GiB) each, checked as RunInstances checks them.
pub(super) fn data_disk_prices(p: &Params) -> Result<Vec<(DiskCategory, u64)>, ApiError> {
    let mut out = Vec::new();
    for n in 1..=16 {
        let category = p.nth("DataDisk.N.Category", n);
        let size = p.nth("DataDisk.N.Size", n);
        if category.is_none() && size.is_none() {
            continue;
        }
        let category = match category {
            None => feiyun_control::DEFAULT_DATA_CATEGORY,
            Some(c) => DiskCategory::parse(c).ok_or_else(|| {
                ApiError::new(
                    400,
                    "InvalidDataDiskCategory.ValueNotSupported",
                    format!("The specified parameter \"DataDisk.{n}.Category\" is not valid."),
                )
            })?,
        };
        let size = size.ok_or_else(|| ApiError::missing(&format!("DataDisk.{n}.Size")))?;
        let size: u64 = size.trim().parse().map_err(|_| {
            ApiError::new(
                400,
                "InvalidDataDiskSize.ValueNotSupported",
                format!("The specified DataDisk.{n}.Size beyond the permitted range."),
            )
        })?;
        let gib = feiyun_control::data_disk_gib(category, Some(size), None)?;
        out.push((category, gib));
    }
    Ok(out)
}
