//! Headless snapshots: the same renderer, drawn to an offscreen texture and written as PNG.

use crate::{
    camera::Camera,
    pick::Picked,
    render::{COLOR_FORMAT, CityRenderer, Gpu, Image, Offscreen, RenderError},
    scene::{Layer, Scene},
};

/// Renders `scene` from `camera` at `width` x `height` with the `hidden` layers off and `selected`
/// highlighted as the operator window highlights a pick.
pub fn render(
    gpu: &Gpu,
    scene: &Scene,
    camera: &Camera,
    (width, height): (u32, u32),
    hidden: &[Layer],
    selected: Option<Picked>,
) -> Result<Image, RenderError> {
    let mut city = CityRenderer::new(gpu, scene, COLOR_FORMAT);
    for layer in hidden {
        city.set_visible(*layer, false);
    }
    city.select(gpu, scene, selected);
    Offscreen::new(gpu, width, height).render(gpu, &city, camera)
}
