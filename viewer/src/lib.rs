//! The City Twin viewer: renders the city the twin holds in 3D with wgpu.
//!
//! - [`project`]: longitude/latitude to local metres around the city's centre (f32-safe world space).
//! - [`triangulate`]: ear clipping for footprints, water and parks.
//! - [`scene`]: turns entities into GPU-ready geometry: one merged mesh for the static layers (ground,
//!   terrain, parks, water, roads, extruded buildings) and one instance per sensor, so the whole city draws
//!   in two draw calls.
//! - [`pick`]: what is under the cursor: rays against extruded footprints through a ground grid, and
//!   sensor glyphs on screen; sensors in front of a building win over it.
//! - [`style`]: live colours by layer (China AQI bands, traffic speed, bin fill, lights, river alerts,
//!   edge links) and their legends.
//! - [`client`]: reads the city from the cloud through the public API.
//! - [`live`]: follows Watch off the render thread and recolours only the glyphs that changed.
//! - [`camera`]: orbit cameras and the presets (whole city, CBD, landmarks such as Orange Isle).
//! - [`lod`]: level of detail for the buildings: ground tiles out of view are skipped, and walls that
//!   would not span a pixel are left out (their roofs stay).
//! - [`render`]: the renderer: depth (reversed Z), a directional light plus ambient, 4x MSAA, and offscreen
//!   rendering to RGBA for PNG snapshots.
//!
//! - [`testing`]: entity builders shared by the tests.
//! - [`window`]: the operator window (winit + egui): orbit/pan/zoom, presets, layer toggles, search,
//!   picking with the entity's attributes, legends, link state and frame time.
//!
//! The viewer is a client of the public API like any integrator; with `--offline` it renders the
//! demonstration city generated locally.

pub mod camera;
pub mod client;
pub mod live;
pub mod lod;
pub mod pick;
pub mod project;
pub mod render;
pub mod scene;
pub mod snapshot;
pub mod style;
pub mod testing;
pub mod triangulate;
pub mod window;
