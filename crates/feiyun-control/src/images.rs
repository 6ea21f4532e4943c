//! The region's image catalog. Hosts materialize images locally on demand: the built-in image
//! is built on each host; a region image is fetched over the host protocol and checked against
//! the checksum recorded here.

use feiyun_domain::image::Image;

use crate::ControlPlane;

impl ControlPlane {
    /// An image the account may boot from: a system image or one of its own.
    pub fn image_visible(&self, account_id: &str, image_id: &str) -> bool {
        self.images
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(image_id)
            .is_some_and(|i| i.owner_account_id.as_deref().map(|o| o == account_id).unwrap_or(true))
    }

    /// An image of the catalog, whoever owns it.
    pub fn image(&self, image_id: &str) -> Option<Image> {
        self.images.read().unwrap_or_else(|p| p.into_inner()).get(image_id).cloned()
    }

    /// The images an account sees, by id.
    pub fn images_for(&self, account_id: &str) -> Vec<Image> {
        self.images
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|i| i.owner_account_id.as_deref().map(|o| o == account_id).unwrap_or(true))
            .cloned()
            .collect()
    }
}
