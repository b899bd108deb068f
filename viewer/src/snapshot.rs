//! Headless snapshots: the same renderer, drawn to an offscreen texture and written as PNG.

use crate::{
    camera::Camera,
    render::{COLOR_FORMAT, CityRenderer, Gpu, Image, Offscreen, RenderError},
    scene::{Layer, Scene},
};

/// Renders `scene` from `camera` at `width` x `height` with the `hidden` layers off.
pub fn render(
    gpu: &Gpu,
    scene: &Scene,
    camera: &Camera,
    width: u32,
    height: u32,
    hidden: &[Layer],
) -> Result<Image, RenderError> {
    let mut city = CityRenderer::new(gpu, scene, COLOR_FORMAT);
    for layer in hidden {
        city.set_visible(*layer, false);
    }
    Offscreen::new(gpu, width, height).render(gpu, &city, camera)
}
