//! The region's image catalog. Hosts materialize images locally on demand: the built-in image
//! is built on each host; a region image is fetched over the host protocol and checked against
//! the checksum recorded here. Which images an account sees, makes, shares and deletes:
//! `storage::images`.

use feiyun_domain::image::Image;

use crate::ControlPlane;

impl ControlPlane {
    /// An image of the catalog, whoever owns it.
    pub fn image(&self, image_id: &str) -> Option<Image> {
        self.images.read().unwrap_or_else(|p| p.into_inner()).get(image_id).cloned()
    }
}
