//! The renderer: pipelines for merged static meshes and instanced glyphs over one uniform block; reversed-Z
//! depth; back faces culled; 4x MSAA; and an offscreen target whose pixels can be read back for PNG
//! snapshots and tests.
//!
//! The buildings are drawn with level of detail ([`crate::lod`]): two index buffers over their vertices,
//! roofs and walls, of which each frame draws the ranges its camera needs.
//!
//! A third pipeline draws the edge boxes' markers last, over everything, sized in marker units (a pixel
//! far away, [`crate::scene::MARKER_FLOOR_M`] up close); their mesh is rebuilt when a box's link state
//! changes. A selected sensor gets a beacon, a small mesh on the mesh pipeline; a selected building is
//! highlighted by rewriting its own vertices in the buildings mesh, so it costs no extra draw.

use std::collections::BTreeSet;

use bytemuck::{Pod, Zeroable};
use glam::Vec3;
use wgpu::util::DeviceExt;

use crate::{
    camera::Camera,
    lod::{self, Tile},
    pick::Picked,
    scene::{GLYPH_SIZE, Glyph, Layer, MARKER_FLOOR_M, Mesh, Scene, Vertex},
};

/// Samples per pixel.
pub const MSAA: u32 = 4;
/// The depth format (reversed Z: cleared to 0, nearer is greater).
pub const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
/// The colour format of snapshots.
pub const COLOR_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
/// The sky.
pub const SKY: wgpu::Color = wgpu::Color { r: 0.52, g: 0.68, b: 0.86, a: 1.0 };

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No GPU or software adapter (on Debian, lavapipe comes with `mesa-vulkan-drivers`).
    #[error("no graphics adapter found ({0}); install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers")]
    NoAdapter(String),
    /// The adapter refused a device.
    #[error("cannot open the graphics device: {0}")]
    Device(#[from] wgpu::RequestDeviceError),
    /// Reading the image back failed.
    #[error("cannot read the rendered image back: {0}")]
    Readback(String),
    /// Writing the PNG failed.
    #[error("cannot write the PNG: {0}")]
    Png(#[from] png::EncodingError),
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A device and its queue.
#[derive(Debug)]
pub struct Gpu {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter is (e.g. `llvmpipe` for lavapipe).
    pub adapter: wgpu::AdapterInfo,
}

impl Gpu {
    /// Opens the best adapter without a window (`WGPU_BACKEND` etc. from the environment apply).
    pub fn headless() -> Result<Gpu, RenderError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        Ok(Gpu::open(&instance, None)?.0)
    }

    /// Opens the best adapter of `instance` (able to present to `surface`, if given); returns the adapter too.
    pub fn open(
        instance: &wgpu::Instance,
        surface: Option<&wgpu::Surface<'_>>,
    ) -> Result<(Gpu, wgpu::Adapter), RenderError> {
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            compatible_surface: surface,
            ..Default::default()
        }))
        .map_err(|e| RenderError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("city twin viewer"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))?;
        Ok((Gpu { device, queue, adapter: info }, adapter))
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Globals {
    view_proj: [[f32; 4]; 4],
    light_dir: [f32; 4],
    ambient: [f32; 4],
    /// xyz: the eye, for marker sizes.
    eye: [f32; 4],
    /// x: metres a pixel covers per metre of distance; y: [`MARKER_FLOOR_M`].
    marker: [f32; 4],
    /// The camera's right and up, for glyph quads that face it.
    right: [f32; 4],
    up: [f32; 4],
}

/// The metres one marker unit spans at `at`, seen from `camera` in an image `height_px` tall: a pixel, but
/// never less than [`MARKER_FLOOR_M`] (the shader's `vs_marker` computes the same).
pub fn marker_unit_m(camera: &Camera, at: Vec3, height_px: u32) -> f32 {
    (at.distance(camera.eye()) * metres_per_pixel_per_metre(camera, height_px)).max(MARKER_FLOOR_M)
}

/// The pixels one marker unit spans at `at`: one, or more up close where [`MARKER_FLOOR_M`] takes over.
pub fn marker_unit_px(camera: &Camera, at: Vec3, height_px: u32) -> f32 {
    let metres_per_px = at.distance(camera.eye()) * metres_per_pixel_per_metre(camera, height_px);
    marker_unit_m(camera, at, height_px) / metres_per_px.max(f32::MIN_POSITIVE)
}

fn metres_per_pixel_per_metre(camera: &Camera, height_px: u32) -> f32 {
    2.0 * (camera.fov_y / 2.0).tan() / height_px.max(1) as f32
}

/// A mesh on the GPU.
#[derive(Debug)]
struct GpuMesh {
    vertices: wgpu::Buffer,
    indices: wgpu::Buffer,
    count: u32,
}

impl GpuMesh {
    fn upload(device: &wgpu::Device, label: &str, mesh: &Mesh) -> Option<GpuMesh> {
        if mesh.indices.is_empty() {
            return None;
        }
        let vertices = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(&mesh.vertices),
            // Writable: a selected building's vertices are recoloured in place.
            usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
        });
        let indices = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(&mesh.indices),
            usage: wgpu::BufferUsages::INDEX,
        });
        Some(GpuMesh { vertices, indices, count: mesh.indices.len() as u32 })
    }
}

/// The unit quad a far glyph is drawn as (`vs_glyph_far` turns it to the camera): x -0.5..0.5, y 0..1,
/// counter-clockwise seen from the camera.
fn glyph_quad() -> Mesh {
    let corners =
        [Vec3::new(-0.5, 0.0, 0.0), Vec3::new(0.5, 0.0, 0.0), Vec3::new(0.5, 1.0, 0.0), Vec3::new(-0.5, 1.0, 0.0)];
    Mesh {
        vertices: corners.map(|c| Vertex { pos: c.into(), normal: [0.0, 1.0, 0.0], color: [1.0; 4] }).to_vec(),
        indices: vec![0, 1, 2, 0, 2, 3],
    }
}

/// The unit glyph: a box 1 wide and 2 tall standing on the origin.
fn glyph_mesh() -> Mesh {
    let mut m = Mesh::default();
    let (h, t) = (0.5f32, 2.0f32);
    let faces: [(Vec3, [Vec3; 4]); 5] = [
        (Vec3::Y, [Vec3::new(-h, t, h), Vec3::new(h, t, h), Vec3::new(h, t, -h), Vec3::new(-h, t, -h)]),
        (Vec3::Z, [Vec3::new(-h, 0.0, h), Vec3::new(h, 0.0, h), Vec3::new(h, t, h), Vec3::new(-h, t, h)]),
        (Vec3::NEG_Z, [Vec3::new(h, 0.0, -h), Vec3::new(-h, 0.0, -h), Vec3::new(-h, t, -h), Vec3::new(h, t, -h)]),
        (Vec3::X, [Vec3::new(h, 0.0, h), Vec3::new(h, 0.0, -h), Vec3::new(h, t, -h), Vec3::new(h, t, h)]),
        (Vec3::NEG_X, [Vec3::new(-h, 0.0, -h), Vec3::new(-h, 0.0, h), Vec3::new(-h, t, h), Vec3::new(-h, t, -h)]),
    ];
    for (normal, corners) in faces {
        let base = m.vertices.len() as u32;
        for c in corners {
            m.vertices.push(Vertex { pos: c.into(), normal: normal.into(), color: [1.0; 4] });
        }
        m.indices.extend_from_slice(&[base, base + 1, base + 2, base, base + 2, base + 3]);
    }
    m
}

const VERTEX_ATTRIBUTES: [wgpu::VertexAttribute; 3] =
    wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3, 2 => Float32x4];
const GLYPH_ATTRIBUTES: [wgpu::VertexAttribute; 3] =
    wgpu::vertex_attr_array![3 => Float32x3, 4 => Float32, 5 => Float32x4];

/// The city on the GPU and the pipelines that draw it.
#[derive(Debug)]
pub struct CityRenderer {
    mesh_pipeline: wgpu::RenderPipeline,
    glyph_pipeline: wgpu::RenderPipeline,
    glyph_far_pipeline: wgpu::RenderPipeline,
    marker_pipeline: wgpu::RenderPipeline,
    globals: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    layers: Vec<(Layer, GpuMesh)>,
    /// The buildings' roof and wall index buffers, and their tiles, for level of detail.
    roofs: Option<wgpu::Buffer>,
    walls: Option<wgpu::Buffer>,
    tiles: Vec<Tile>,
    level_of_detail: bool,
    glyph: Option<GpuMesh>,
    glyph_quad: Option<GpuMesh>,
    /// Where the glyphs are (their bases' bounds), for choosing boxes or quads.
    glyph_bounds: (Vec3, Vec3),
    instances: wgpu::Buffer,
    instance_count: u32,
    hidden: BTreeSet<Layer>,
    edges: Option<GpuMesh>,
    beacon: Option<GpuMesh>,
    selected: Option<Picked>,
}

/// The scene's glyphs as an instance buffer, and the bounds of their centres.
fn glyph_instances(gpu: &Gpu, scene: &Scene) -> (wgpu::Buffer, (Vec3, Vec3)) {
    let instances = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("glyph instances"),
        size: (scene.glyphs.len().max(1) * std::mem::size_of::<Glyph>()) as u64,
        usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&instances, 0, bytemuck::cast_slice(&scene.glyphs));
    let bounds = scene
        .glyphs
        .iter()
        .map(|g| Vec3::from(g.center))
        .fold((Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)), |(lo, hi), c| (lo.min(c), hi.max(c)));
    (instances, bounds)
}

impl CityRenderer {
    /// Uploads `scene` and builds the pipelines for colour targets of `format`.
    pub fn new(gpu: &Gpu, scene: &Scene, format: wgpu::TextureFormat) -> CityRenderer {
        let device = &gpu.device;
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("city shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shader.wgsl").into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("globals"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }],
        });
        let globals = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("globals"),
            size: std::mem::size_of::<Globals>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("globals"),
            layout: &layout,
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: globals.as_entire_binding() }],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("city"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let vertex_layout = wgpu::VertexBufferLayout {
            array_stride: std::mem::size_of::<Vertex>() as u64,
            step_mode: wgpu::VertexStepMode::Vertex,
            attributes: &VERTEX_ATTRIBUTES,
        };
        let glyph_layout = wgpu::VertexBufferLayout {
            array_stride: std::mem::size_of::<Glyph>() as u64,
            step_mode: wgpu::VertexStepMode::Instance,
            attributes: &GLYPH_ATTRIBUTES,
        };
        // Markers are drawn last and over everything (no depth test), so a box shows behind towers.
        let pipeline = |label: &str, entry: &str, buffers: &[Option<wgpu::VertexBufferLayout<'_>>], over: bool| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    buffers,
                },
                // Every mesh is wound counter-clockwise seen from outside (extrusions follow their ring's
                // winding; flat layers face up), so back faces are dropped before they are rasterised: on a
                // software adapter that is a good share of the frame. Markers are flat and drawn from above.
                primitive: wgpu::PrimitiveState {
                    cull_mode: if over { None } else { Some(wgpu::Face::Back) },
                    ..Default::default()
                },
                depth_stencil: Some(wgpu::DepthStencilState {
                    format: DEPTH_FORMAT,
                    depth_write_enabled: Some(!over),
                    depth_compare: Some(if over {
                        wgpu::CompareFunction::Always
                    } else {
                        wgpu::CompareFunction::Greater
                    }),
                    stencil: Default::default(),
                    bias: Default::default(),
                }),
                multisample: wgpu::MultisampleState { count: MSAA, ..Default::default() },
                fragment: Some(wgpu::FragmentState {
                    module: &shader,
                    entry_point: Some("fs_lit"),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let mesh_pipeline = pipeline("meshes", "vs_mesh", &[Some(vertex_layout.clone())], false);
        let marker_pipeline = pipeline("markers", "vs_marker", &[Some(vertex_layout.clone())], true);
        let glyph_buffers = [Some(vertex_layout), Some(glyph_layout)];
        let glyph_pipeline = pipeline("glyphs", "vs_glyph", &glyph_buffers, false);
        let glyph_far_pipeline = pipeline("far glyphs", "vs_glyph_far", &glyph_buffers, false);
        let index_buffer = |label: &str, indices: &[u32]| {
            (!indices.is_empty()).then(|| {
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(indices),
                    usage: wgpu::BufferUsages::INDEX,
                })
            })
        };
        let roofs = index_buffer("roofs", &scene.building_tiles.roof_indices);
        let walls = index_buffer("walls", &scene.building_tiles.wall_indices);
        let layers = [(Layer::Land, &scene.land), (Layer::Roads, &scene.roads), (Layer::Buildings, &scene.buildings)]
            .into_iter()
            .filter_map(|(layer, mesh)| GpuMesh::upload(device, "layer", mesh).map(|m| (layer, m)))
            .collect();
        let (instances, glyph_bounds) = glyph_instances(gpu, scene);
        CityRenderer {
            mesh_pipeline,
            glyph_pipeline,
            glyph_far_pipeline,
            marker_pipeline,
            globals,
            bind_group,
            layers,
            roofs,
            walls,
            tiles: scene.building_tiles.tiles.clone(),
            level_of_detail: true,
            glyph: GpuMesh::upload(device, "glyph", &glyph_mesh()),
            glyph_quad: GpuMesh::upload(device, "glyph quad", &glyph_quad()),
            glyph_bounds,
            instances,
            instance_count: scene.glyphs.len() as u32,
            hidden: BTreeSet::new(),
            edges: GpuMesh::upload(device, "edge boxes", &scene.edge_overlay()),
            beacon: None,
            selected: None,
        }
    }

    /// Uploads every glyph again, after glyphs were added to the scene ([`Scene::add_point`]), and the edge
    /// boxes' markers with them.
    pub fn reload_glyphs(&mut self, gpu: &Gpu, scene: &Scene) {
        let (instances, bounds) = glyph_instances(gpu, scene);
        self.instances = instances;
        self.glyph_bounds = bounds;
        self.instance_count = scene.glyphs.len() as u32;
        self.edges = GpuMesh::upload(&gpu.device, "edge boxes", &scene.edge_overlay());
    }

    /// Applies live changes: rewrites the glyphs at `dirty` (see [`crate::live::LiveState::apply`]) and, if an
    /// edge box is among them, its ring and link line.
    pub fn apply(&mut self, gpu: &Gpu, scene: &Scene, dirty: &[usize]) {
        for &i in dirty {
            if let Some(glyph) = scene.glyphs.get(i) {
                self.update_glyph(gpu, i, glyph);
            }
        }
        if dirty.iter().any(|i| scene.is_edge_glyph(*i)) {
            self.edges = GpuMesh::upload(&gpu.device, "edge boxes", &scene.edge_overlay());
        }
    }

    /// What is highlighted now.
    pub fn selected(&self) -> Option<Picked> {
        self.selected
    }

    /// Highlights `picked` (and only it): a building in the selection colour, a sensor under a beacon.
    pub fn select(&mut self, gpu: &Gpu, scene: &Scene, picked: Option<Picked>) {
        if self.selected == picked {
            return;
        }
        let buildings = self.layers.iter().find(|(l, _)| *l == Layer::Buildings).map(|(_, m)| &m.vertices);
        let write = |start: u32, vertices: &[Vertex]| {
            if let Some(buffer) = buildings {
                let offset = u64::from(start) * std::mem::size_of::<Vertex>() as u64;
                gpu.queue.write_buffer(buffer, offset, bytemuck::cast_slice(vertices));
            }
        };
        if let Some(Picked::Building(i)) = self.selected
            && let Some((start, vertices)) = scene.building_vertices(i)
        {
            write(start, vertices);
        }
        self.beacon = None;
        match picked {
            Some(Picked::Building(i)) => {
                if let Some((start, vertices)) = scene.highlighted_building(i) {
                    write(start, &vertices);
                }
            }
            Some(Picked::Sensor(i)) => {
                self.beacon = scene.sensor_beacon(i).and_then(|m| GpuMesh::upload(&gpu.device, "beacon", &m));
            }
            None => {}
        }
        self.selected = picked;
    }

    /// Switches level of detail (on by default, see [`crate::lod`]); off, every wall is drawn and every
    /// glyph is a box, as a reference.
    pub fn set_level_of_detail(&mut self, on: bool) {
        self.level_of_detail = on;
    }

    /// Whether a frame from `camera` at `height` pixels draws the glyphs as quads.
    pub fn glyphs_as_quads(&self, camera: &Camera, height: u32) -> bool {
        self.level_of_detail && lod::glyphs_are_subpixel(camera, self.glyph_bounds, GLYPH_SIZE, height)
    }

    /// The building triangles a frame from `camera` at `width` x `height` draws.
    pub fn building_triangles(&self, camera: &Camera, width: u32, height: u32) -> usize {
        match (self.level_of_detail, self.layers.iter().find(|(l, _)| *l == Layer::Buildings)) {
            (true, _) => lod::plan(&self.tiles, camera, width, height).triangles(),
            (false, mesh) => mesh.map_or(0, |(_, m)| m.count as usize / 3),
        }
    }

    /// Shows or hides a layer.
    pub fn set_visible(&mut self, layer: Layer, visible: bool) {
        if visible {
            self.hidden.remove(&layer);
        } else {
            self.hidden.insert(layer);
        }
    }

    /// Rewrites one glyph's instance data (a live change touches 32 bytes, not the scene).
    pub fn update_glyph(&self, gpu: &Gpu, index: usize, glyph: &Glyph) {
        if (index as u32) < self.instance_count {
            let offset = (index * std::mem::size_of::<Glyph>()) as u64;
            gpu.queue.write_buffer(&self.instances, offset, bytemuck::bytes_of(glyph));
        }
    }

    /// Sets the camera for the next draw into a `width` x `height` target.
    pub fn set_camera(&self, gpu: &Gpu, camera: &Camera, width: u32, height: u32) {
        let forward = (camera.target - camera.eye()).normalize_or_zero();
        let right = forward.cross(Vec3::Y).normalize_or_zero();
        let up = right.cross(forward);
        let globals = Globals {
            view_proj: camera.view_proj(width as f32 / height.max(1) as f32).to_cols_array_2d(),
            // Afternoon sun from the south-west, 50 degrees up.
            light_dir: Vec3::new(0.55, -0.77, -0.33).normalize().extend(0.0).into(),
            ambient: [0.45, 0.0, 0.0, 0.0],
            eye: camera.eye().extend(1.0).into(),
            marker: [metres_per_pixel_per_metre(camera, height), MARKER_FLOOR_M, 0.0, 0.0],
            right: right.extend(0.0).into(),
            up: up.extend(0.0).into(),
        };
        gpu.queue.write_buffer(&self.globals, 0, bytemuck::bytes_of(&globals));
    }

    /// Records the draws from `camera` into a `width` x `height` target: one per visible layer (the buildings
    /// a few, by level of detail), one for a beacon, one for all glyphs, one for the markers.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, camera: &Camera, width: u32, height: u32) {
        pass.set_bind_group(0, &self.bind_group, &[]);
        // Front to back, roughly: what stands on the ground first, then buildings, roads, the land under
        // them; most fragments of what lies beneath then fail the depth test before they are shaded.
        let (glyph, pipeline) = if self.glyphs_as_quads(camera, height) {
            (&self.glyph_quad, &self.glyph_far_pipeline)
        } else {
            (&self.glyph, &self.glyph_pipeline)
        };
        if let Some(glyph) =
            glyph.as_ref().filter(|_| !self.hidden.contains(&Layer::Sensors) && self.instance_count > 0)
        {
            pass.set_pipeline(pipeline);
            pass.set_vertex_buffer(0, glyph.vertices.slice(..));
            pass.set_vertex_buffer(1, self.instances.slice(..));
            pass.set_index_buffer(glyph.indices.slice(..), wgpu::IndexFormat::Uint32);
            pass.draw_indexed(0..glyph.count, 0, 0..self.instance_count);
        }
        pass.set_pipeline(&self.mesh_pipeline);
        for (layer, mesh) in self.layers.iter().rev() {
            if self.hidden.contains(layer) {
                continue;
            }
            pass.set_vertex_buffer(0, mesh.vertices.slice(..));
            if *layer == Layer::Buildings && self.level_of_detail {
                let draws = lod::plan(&self.tiles, camera, width, height);
                for (buffer, ranges) in [(&self.roofs, &draws.roofs), (&self.walls, &draws.walls)] {
                    let Some(buffer) = buffer else { continue };
                    pass.set_index_buffer(buffer.slice(..), wgpu::IndexFormat::Uint32);
                    for r in ranges {
                        pass.draw_indexed(r.clone(), 0, 0..1);
                    }
                }
                continue;
            }
            pass.set_index_buffer(mesh.indices.slice(..), wgpu::IndexFormat::Uint32);
            pass.draw_indexed(0..mesh.count, 0, 0..1);
        }
        // The selected sensor's beacon and the edge boxes' markers belong to the sensors layer.
        if let Some(mesh) = self.beacon.as_ref().filter(|_| !self.hidden.contains(&Layer::Sensors)) {
            pass.set_vertex_buffer(0, mesh.vertices.slice(..));
            pass.set_index_buffer(mesh.indices.slice(..), wgpu::IndexFormat::Uint32);
            pass.draw_indexed(0..mesh.count, 0, 0..1);
        }
        if let Some(markers) = self.edges.as_ref().filter(|_| !self.hidden.contains(&Layer::Sensors)) {
            pass.set_pipeline(&self.marker_pipeline);
            pass.set_vertex_buffer(0, markers.vertices.slice(..));
            pass.set_index_buffer(markers.indices.slice(..), wgpu::IndexFormat::Uint32);
            pass.draw_indexed(0..markers.count, 0, 0..1);
        }
    }
}

/// An RGBA8 image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA bytes, `width * height * 4`.
    pub pixels: Vec<u8>,
}

impl Image {
    /// The pixel at (x, y), or `None` outside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = ((y * self.width + x) * 4) as usize;
        self.pixels.get(i..i + 4).and_then(|p| p.try_into().ok())
    }

    /// Writes the image as PNG.
    pub fn write_png(&self, path: &std::path::Path) -> Result<(), RenderError> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut encoder = png::Encoder::new(file, self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(())
    }
}

/// The multisampled colour and depth attachments a frame of `format` and size is drawn into before it is
/// resolved to a window's surface or an offscreen texture.
#[derive(Debug)]
pub struct FrameTargets {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    msaa: wgpu::TextureView,
    depth: wgpu::TextureView,
}

fn texture(
    gpu: &Gpu,
    label: &str,
    size: wgpu::Extent3d,
    format: wgpu::TextureFormat,
    samples: u32,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size,
        mip_level_count: 1,
        sample_count: samples,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
}

impl FrameTargets {
    /// Attachments for `width` x `height` frames of `format`.
    pub fn new(gpu: &Gpu, width: u32, height: u32, format: wgpu::TextureFormat) -> FrameTargets {
        let size = wgpu::Extent3d { width: width.max(1), height: height.max(1), depth_or_array_layers: 1 };
        let msaa = texture(gpu, "msaa colour", size, format, MSAA, wgpu::TextureUsages::RENDER_ATTACHMENT);
        let depth = texture(gpu, "depth", size, DEPTH_FORMAT, MSAA, wgpu::TextureUsages::RENDER_ATTACHMENT);
        FrameTargets {
            width,
            height,
            msaa: msaa.create_view(&Default::default()),
            depth: depth.create_view(&Default::default()),
        }
    }

    /// Records the city drawn from `camera` and resolved into `output`.
    pub fn city_pass(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        output: &wgpu::TextureView,
        city: &CityRenderer,
        camera: &Camera,
    ) {
        city.set_camera(gpu, camera, self.width, self.height);
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("city"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &self.msaa,
                depth_slice: None,
                resolve_target: Some(output),
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(SKY), store: wgpu::StoreOp::Discard },
            })],
            depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                view: &self.depth,
                depth_ops: Some(wgpu::Operations { load: wgpu::LoadOp::Clear(0.0), store: wgpu::StoreOp::Discard }),
                stencil_ops: None,
            }),
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        city.draw(&mut pass, camera, self.width, self.height);
    }
}

/// An offscreen target: multisampled colour and depth, a resolve texture and a readback buffer.
#[derive(Debug)]
pub struct Offscreen {
    width: u32,
    height: u32,
    targets: FrameTargets,
    resolved: wgpu::Texture,
    readback: wgpu::Buffer,
    padded_row: u32,
}

impl Offscreen {
    /// A `width` x `height` target.
    pub fn new(gpu: &Gpu, width: u32, height: u32) -> Offscreen {
        let size = wgpu::Extent3d { width, height, depth_or_array_layers: 1 };
        let usage = wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC;
        let resolved = texture(gpu, "resolved colour", size, COLOR_FORMAT, 1, usage);
        let padded_row = (width * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let readback = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: u64::from(padded_row) * u64::from(height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        Offscreen {
            width,
            height,
            targets: FrameTargets::new(gpu, width, height, COLOR_FORMAT),
            resolved,
            readback,
            padded_row,
        }
    }

    /// Renders one frame and waits until the GPU has finished it (for frame timing); no readback.
    pub fn draw(&self, gpu: &Gpu, city: &CityRenderer, camera: &Camera) -> Result<(), RenderError> {
        let encoder = self.encode(gpu, city, camera, false);
        gpu.queue.submit([encoder.finish()]);
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| RenderError::Readback(e.to_string()))?;
        Ok(())
    }

    fn encode(&self, gpu: &Gpu, city: &CityRenderer, camera: &Camera, copy_out: bool) -> wgpu::CommandEncoder {
        let resolved = self.resolved.create_view(&Default::default());
        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("snapshot") });
        self.targets.city_pass(gpu, &mut encoder, &resolved, city, camera);
        if copy_out {
            self.copy_out(&mut encoder);
        }
        encoder
    }

    fn copy_out(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &self.resolved,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &self.readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.padded_row),
                    rows_per_image: Some(self.height),
                },
            },
            wgpu::Extent3d { width: self.width, height: self.height, depth_or_array_layers: 1 },
        );
    }

    /// Renders the city from `camera` and reads the pixels back.
    pub fn render(&self, gpu: &Gpu, city: &CityRenderer, camera: &Camera) -> Result<Image, RenderError> {
        let encoder = self.encode(gpu, city, camera, true);
        gpu.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        self.readback.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| RenderError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|e| RenderError::Readback(e.to_string()))?
            .map_err(|e| RenderError::Readback(e.to_string()))?;
        let mut pixels = Vec::with_capacity((self.width * self.height * 4) as usize);
        {
            let data = self.readback.get_mapped_range(..).map_err(|e| RenderError::Readback(e.to_string()))?;
            for row in data.chunks(self.padded_row as usize).take(self.height as usize) {
                pixels.extend_from_slice(&row[..(self.width * 4) as usize]);
            }
        }
        self.readback.unmap();
        Ok(Image { width: self.width, height: self.height, pixels })
    }
}
