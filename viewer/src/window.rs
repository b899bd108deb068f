//! The operator window: the live city with an orbit camera, presets, layer toggles, search, picking, the
//! link's state and the frame time, with an egui panel over the wgpu scene.
//!
//! Network I/O never runs on the render thread: listing and Watch run on a Tokio runtime and hand the
//! render thread messages it drains without blocking at the start of each frame.
//!
//! A click picks with [`crate::pick::pick`] (a sensor glyph or a building, whichever is in front) and
//! the panel shows that entity's attributes, reported and desired, with when each was observed; Watch
//! keeps them current. The renderer highlights the pick.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Instant,
};

use glam::Vec3;
use tokio::sync::mpsc;
use twin_model::{Entity, Value};
use winit::{
    application::ApplicationHandler,
    event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent},
    event_loop::{ActiveEventLoop, EventLoop},
    window::{Window, WindowId},
};

use crate::{
    camera::{Camera, PRESETS},
    client,
    live::{KnownEntities, LiveEvent, LiveState, follow},
    pick::{Pickable, pick},
    render::{CityRenderer, FrameTargets, Gpu, RenderError},
    scene::{EDGE_NODE, Layer, Scene, palette},
    style::legend,
};

/// Where the city comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A cloud's URL.
    Cloud(String),
    /// The demonstration city generated locally, with this seed.
    Offline(u64),
}

/// Why the window could not run.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// No display, or the event loop failed.
    #[error("cannot open a window: {0}")]
    EventLoop(#[from] winit::error::EventLoopError),
    /// The async runtime could not start.
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Opens the window and runs until it is closed; `select` names an entity to select (and look at) once the
/// city is loaded.
pub fn run(source: Source, camera: String, select: Option<String>) -> Result<(), WindowError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let event_loop = EventLoop::new()?;
    // SIGINT or SIGTERM closes the window like its close button, so a supervisor (citytwin) can stop it
    // cleanly; the proxy wakes the event loop even when it is idle.
    let stop = Arc::new(AtomicBool::new(false));
    let proxy = event_loop.create_proxy();
    let signal = {
        let _runtime = runtime.enter();
        twin_telemetry::signal::shutdown_signal()
    };
    runtime.spawn({
        let stop = stop.clone();
        async move {
            signal.await;
            stop.store(true, Ordering::Relaxed);
            let _ = proxy.send_event(());
        }
    });
    let mut app = App::new(source, camera, runtime);
    app.selected = select;
    app.stop = stop;
    event_loop.run_app(&mut app)?;
    Ok(())
}

/// The GPU side of the window.
struct Gfx {
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    gpu: Gpu,
    targets: FrameTargets,
    egui_state: egui_winit::State,
    egui_renderer: egui_wgpu::Renderer,
}

/// The city once loaded.
struct City {
    scene: Scene,
    live: LiveState,
    renderer: CityRenderer,
    entities: KnownEntities,
}

/// The city as listed (entities and the revision the listing is at), or why it could not be.
type Listing = Result<(Vec<Entity>, u64), String>;

#[derive(Debug, Clone, PartialEq)]
enum Link {
    Loading,
    Connected,
    Lost(String),
    Offline,
    Failed(String),
}

struct App {
    source: Source,
    preset: String,
    runtime: tokio::runtime::Runtime,
    gfx: Option<Gfx>,
    egui: egui::Context,
    city: Option<City>,
    loading: Option<std::sync::mpsc::Receiver<Listing>>,
    loaded_count: Arc<AtomicUsize>,
    live_rx: Option<mpsc::Receiver<LiveEvent>>,
    link: Link,
    camera: Camera,
    hidden: [bool; 4],
    search: String,
    selected: Option<String>,
    drag: Option<(MouseButton, (f64, f64), bool)>,
    cursor: (f64, f64),
    frame_ms: f32,
    last_frame: Instant,
    error: Option<String>,
    /// Set on SIGINT or SIGTERM.
    stop: Arc<AtomicBool>,
}

const LAYERS: [(Layer, &str); 4] = [
    (Layer::Land, "land & water"),
    (Layer::Roads, "roads"),
    (Layer::Buildings, "buildings"),
    (Layer::Sensors, "sensors"),
];

impl App {
    fn new(source: Source, preset: String, runtime: tokio::runtime::Runtime) -> App {
        let loaded_count = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let count = loaded_count.clone();
        match source.clone() {
            Source::Cloud(url) => {
                runtime.spawn(async move {
                    // Until the city is loaded: each failure is shown, then tried again.
                    let mut wait = std::time::Duration::from_millis(500);
                    loop {
                        let listed = async {
                            let channel = client::connect(&url).await?;
                            client::list_all(channel, |n| count.store(n, Ordering::Relaxed)).await
                        };
                        let result = listed.await.map_err(|e| e.to_string());
                        let done = result.is_ok();
                        if tx.send(result).is_err() || done {
                            return;
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(std::time::Duration::from_secs(10));
                    }
                });
            }
            Source::Offline(seed) => {
                runtime.spawn_blocking(move || {
                    let city = twin_city::changsha(seed);
                    count.store(city.entities.len(), Ordering::Relaxed);
                    let _ = tx.send(Ok((city.entities, 0)));
                });
            }
        }
        App {
            source,
            preset,
            runtime,
            gfx: None,
            egui: egui::Context::default(),
            city: None,
            loading: Some(rx),
            loaded_count,
            live_rx: None,
            link: Link::Loading,
            camera: Camera::framing(Vec3::ZERO, 10_000.0, 60.0),
            hidden: [false; 4],
            search: String::new(),
            selected: None,
            drag: None,
            cursor: (0.0, 0.0),
            frame_ms: 0.0,
            last_frame: Instant::now(),
            error: None,
            stop: Arc::default(),
        }
    }

    fn open_gfx(&mut self, event_loop: &ActiveEventLoop) -> Result<Gfx, String> {
        let attributes = Window::default_attributes()
            .with_title("City Twin")
            .with_inner_size(winit::dpi::LogicalSize::new(1600.0, 900.0));
        let window = Arc::new(event_loop.create_window(attributes).map_err(|e| e.to_string())?);
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_with_display_handle_from_env(Box::new(
            event_loop.owned_display_handle(),
        )));
        let surface = instance.create_surface(window.clone()).map_err(|e| e.to_string())?;
        let (gpu, adapter) = Gpu::open(&instance, Some(&surface)).map_err(|e: RenderError| e.to_string())?;
        let size = window.inner_size();
        let mut config = surface
            .get_default_config(&adapter, size.width.max(1), size.height.max(1))
            .ok_or("the adapter cannot present to this window")?;
        let caps = surface.get_capabilities(&adapter);
        if let Some(srgb) = caps.formats.iter().find(|f| f.is_srgb()) {
            config.format = *srgb;
        }
        surface.configure(&gpu.device, &config);
        let targets = FrameTargets::new(&gpu, config.width, config.height, config.format);
        let egui_state = egui_winit::State::new(
            self.egui.clone(),
            egui::ViewportId::ROOT,
            &window,
            Some(window.scale_factor() as f32),
            None,
            None,
        );
        let egui_renderer = egui_wgpu::Renderer::new(&gpu.device, config.format, egui_wgpu::RendererOptions::default());
        Ok(Gfx { window, surface, config, gpu, targets, egui_state, egui_renderer })
    }

    /// Takes what the network side has sent, without waiting.
    fn drain(&mut self) {
        if let Some(rx) = &self.loading
            && let Ok(result) = rx.try_recv()
        {
            match result {
                Ok((entities, revision)) => {
                    self.loading = None;
                    self.link = Link::Loading;
                    self.install(entities, revision);
                }
                // Still loading: the loader retries by itself.
                Err(e) => self.link = Link::Failed(e),
            }
        }
        let Some(rx) = self.live_rx.as_mut() else { return };
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        for event in events {
            match event {
                LiveEvent::Connected => self.link = Link::Connected,
                LiveEvent::Disconnected(why) => self.link = Link::Lost(why),
                LiveEvent::Changes(response) => {
                    if let (Some(city), Some(gfx)) = (self.city.as_mut(), self.gfx.as_ref()) {
                        let applied = city.live.apply(&mut city.scene, &response);
                        if !applied.added.is_empty() {
                            city.renderer.reload_glyphs(&gfx.gpu, &city.scene);
                        }
                        city.renderer.apply(&gfx.gpu, &city.scene, &applied.dirty);
                        city.entities.absorb(&response, applied, Instant::now());
                    }
                }
                LiveEvent::Relisted(entities, revision) => self.install(entities, revision),
            }
        }
        // New buildings, roads or districts: rebuild once they have settled.
        if let Some(city) = self.city.as_mut()
            && let Some(entities) = city.entities.rebuild_due(Instant::now())
        {
            let revision = city.live.revision;
            self.install(entities, revision);
        }
    }

    fn install(&mut self, entities: Vec<Entity>, revision: u64) {
        let Some(gfx) = self.gfx.as_ref() else { return };
        let scene = Scene::build(&entities);
        let live = LiveState::new(&entities, &scene, revision);
        let mut renderer = CityRenderer::new(&gfx.gpu, &scene, gfx.config.format);
        for (i, (layer, _)) in LAYERS.iter().enumerate() {
            renderer.set_visible(*layer, !self.hidden[i]);
        }
        if self.city.is_none() {
            self.camera =
                Camera::preset(&scene, &self.preset).or_else(|| Camera::preset(&scene, "city")).unwrap_or(self.camera);
            // Started with `--select`: look at it.
            let selected = self.selected.as_deref().and_then(|id| scene.find(id));
            if let Some((at, distance)) = selected.and_then(|s| scene.focus(s)) {
                self.camera = Camera::focus(at, distance);
            }
        }
        // A re-listed city keeps the selection, if the entity is still there.
        renderer.select(&gfx.gpu, &scene, self.selected.as_deref().and_then(|id| scene.find(id)));
        self.city = Some(City { scene, live, renderer, entities: KnownEntities::new(entities) });
        match &self.source {
            Source::Cloud(url) if self.live_rx.is_none() => {
                let (tx, rx) = mpsc::channel(1024);
                self.runtime.spawn(follow(url.clone(), revision, tx));
                self.live_rx = Some(rx);
            }
            Source::Offline(_) => self.link = Link::Offline,
            Source::Cloud(_) => {}
        }
    }

    fn pick(&mut self, at: (f64, f64)) {
        let (Some(city), Some(gfx)) = (self.city.as_mut(), self.gfx.as_ref()) else { return };
        let size = (gfx.config.width, gfx.config.height);
        let pickable = Pickable { buildings: !self.hidden[2], sensors: !self.hidden[3] };
        let picked = pick(&city.scene, &self.camera, size, (at.0 as f32, at.1 as f32), pickable);
        city.renderer.select(&gfx.gpu, &city.scene, picked);
        self.selected = picked.and_then(|p| city.scene.id_of(p)).map(str::to_owned);
    }

    /// Finds a sensor or building by id: the camera flies to it and it is selected.
    fn find(&mut self, id: &str) {
        let (Some(city), Some(gfx)) = (self.city.as_mut(), self.gfx.as_ref()) else { return };
        match city.scene.find(id) {
            Some(found) => {
                if let Some((at, distance)) = city.scene.focus(found) {
                    self.camera = Camera::focus(at, distance);
                }
                city.renderer.select(&gfx.gpu, &city.scene, Some(found));
                self.selected = Some(id.to_owned());
                self.error = None;
            }
            None => self.error = Some(format!("no sensor or building {id:?}")),
        }
    }

    fn ui(&mut self, root: &mut egui::Ui) {
        egui::Panel::left("panel").resizable(true).default_size(320.0).show(root, |ui| {
            ui.heading("City Twin");
            let (text, colour) = match &self.link {
                Link::Loading => (
                    format!("loading the city... {} entities", self.loaded_count.load(Ordering::Relaxed)),
                    egui::Color32::GRAY,
                ),
                Link::Connected => (
                    format!("live, revision {}", self.city.as_ref().map_or(0, |c| c.live.revision)),
                    egui::Color32::from_rgb(40, 180, 60),
                ),
                Link::Lost(why) => {
                    (format!("connection lost, reconnecting: {why}"), egui::Color32::from_rgb(220, 30, 30))
                }
                Link::Offline => ("offline demonstration city".into(), egui::Color32::GRAY),
                Link::Failed(why) => {
                    (format!("cannot load the city, retrying: {why}"), egui::Color32::from_rgb(220, 30, 30))
                }
            };
            ui.colored_label(colour, text);
            if self.link == Link::Loading {
                ui.add(egui::Spinner::new());
            }
            ui.label(format!("frame {:.1} ms", self.frame_ms));
            ui.separator();
            ui.label("Camera");
            ui.horizontal_wrapped(|ui| {
                for name in PRESETS {
                    if ui.button(name).clicked()
                        && let Some(c) = self.city.as_ref().and_then(|c| Camera::preset(&c.scene, name))
                    {
                        self.camera = c;
                    }
                }
            });
            ui.label("Layers");
            for (i, (layer, label)) in LAYERS.iter().enumerate() {
                let mut shown = !self.hidden[i];
                if ui.checkbox(&mut shown, *label).changed() {
                    self.hidden[i] = !shown;
                    if let Some(city) = self.city.as_mut() {
                        city.renderer.set_visible(*layer, shown);
                    }
                }
            }
            ui.separator();
            ui.horizontal(|ui| {
                ui.label("Find");
                let response = ui.text_edit_singleline(&mut self.search);
                if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    let id = self.search.trim().to_owned();
                    self.find(&id);
                }
            });
            if let Some(e) = &self.error {
                ui.colored_label(egui::Color32::from_rgb(220, 30, 30), e);
            }
            if let (Some(id), Some(city)) = (self.selected.as_ref(), self.city.as_ref()) {
                ui.separator();
                let (r, g, b) = palette::SELECTION;
                ui.colored_label(egui::Color32::from_rgb(r, g, b), "selected (highlighted in this colour)");
                ui.strong(id);
                let entity = city.entities.get(id);
                if let Some(e) = entity {
                    ui.label(format!("type {}", e.header.entity_type));
                    if let Some(f) = city.scene.footprint_index.get(id).and_then(|i| city.scene.footprints.get(*i)) {
                        ui.label(format!("height {:.0} m", f.height_m));
                    }
                    for (name, target) in &e.header.relationships {
                        ui.label(format!("{name} {target}"));
                    }
                    let now = std::time::SystemTime::now();
                    egui::Grid::new("attributes").striped(true).show(ui, |ui| {
                        ui.strong("attribute");
                        ui.strong("reported");
                        ui.strong("desired");
                        ui.strong("last update");
                        ui.end_row();
                        for row in attribute_rows(e, now) {
                            ui.label(row.name);
                            ui.label(row.reported);
                            ui.label(row.desired);
                            ui.label(row.updated);
                            ui.end_row();
                        }
                    });
                    for (label, (r, g, b)) in legend(e.header.entity_type.as_str()) {
                        ui.colored_label(egui::Color32::from_rgb(r, g, b), label.to_string());
                    }
                }
            }
            ui.separator();
            ui.label("Air quality (China AQI)");
            for (label, (r, g, b)) in legend("AirQualityObserved") {
                ui.colored_label(egui::Color32::from_rgb(r, g, b), label.to_string());
            }
            ui.label(
                "Edge boxes: a dot in a ring, drawn over everything, and a line to its district's centre, in the \
                 colour of its link to the cloud:",
            );
            for (label, (r, g, b)) in edge_legend() {
                ui.colored_label(egui::Color32::from_rgb(r, g, b), label);
            }
            ui.label("drag: orbit / right-drag: pan / wheel: zoom / click: pick a sensor or building");
        });
    }

    fn redraw(&mut self) {
        self.drain();
        let now = Instant::now();
        let dt = now.duration_since(self.last_frame).as_secs_f32() * 1e3;
        self.last_frame = now;
        self.frame_ms = if self.frame_ms == 0.0 { dt } else { self.frame_ms * 0.9 + dt * 0.1 };
        let Some(mut gfx) = self.gfx.take() else { return };
        let input = gfx.egui_state.take_egui_input(&gfx.window);
        let egui_ctx = self.egui.clone();
        let mut output = egui_ctx.run_ui(input, |ui| self.ui(ui));
        gfx.egui_state.handle_platform_output(&gfx.window, std::mem::take(&mut output.platform_output));
        // Textures first, even if this frame cannot be shown: the font atlas arrives only once.
        for (id, deltas) in output.textures_delta.set.drain() {
            for delta in deltas {
                gfx.egui_renderer.update_texture(&gfx.gpu.device, &gfx.gpu.queue, id, &delta);
            }
        }
        let freed: Vec<egui::TextureId> = output.textures_delta.free.drain().collect();
        let frame = match gfx.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            _ => {
                for id in &freed {
                    gfx.egui_renderer.free_texture(id);
                }
                gfx.surface.configure(&gfx.gpu.device, &gfx.config);
                self.gfx = Some(gfx);
                return;
            }
        };
        let view = frame.texture.create_view(&Default::default());
        let mut encoder =
            gfx.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        if let Some(city) = self.city.as_ref() {
            gfx.targets.city_pass(&gfx.gpu, &mut encoder, &view, &city.renderer, &self.camera);
        }
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [gfx.config.width, gfx.config.height],
            pixels_per_point: output.pixels_per_point,
        };
        let jobs = egui_ctx.tessellate(std::mem::take(&mut output.shapes), output.pixels_per_point);
        let extra = gfx.egui_renderer.update_buffers(&gfx.gpu.device, &gfx.gpu.queue, &mut encoder, &jobs, &screen);
        {
            let load = if self.city.is_some() { wgpu::LoadOp::Load } else { wgpu::LoadOp::Clear(crate::render::SKY) };
            let pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("ui"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations { load, store: wgpu::StoreOp::Store },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            let mut pass = pass.forget_lifetime();
            gfx.egui_renderer.render(&mut pass, &jobs, &screen);
        }
        for id in &freed {
            gfx.egui_renderer.free_texture(id);
        }
        gfx.gpu.queue.submit(extra.into_iter().chain([encoder.finish()]));
        gfx.gpu.queue.present(frame);
        self.gfx = Some(gfx);
    }
}

/// The edge boxes' legend: their link states, and the colour of a box that has not reported yet.
fn edge_legend() -> Vec<(String, (u8, u8, u8))> {
    let mut entries: Vec<(String, (u8, u8, u8))> =
        legend(EDGE_NODE).into_iter().map(|(label, colour)| (label.to_owned(), colour)).collect();
    entries.push(("no report yet".into(), crate::scene::EDGE_UNREPORTED));
    entries
}

/// One line of the attribute panel.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AttributeRow {
    name: String,
    reported: String,
    desired: String,
    /// When the reported value was observed, and how long ago.
    updated: String,
}

/// The attribute panel of an entity, in name order: the reported and desired value of each attribute and
/// when the reported one was observed (relative to `now`).
fn attribute_rows(entity: &Entity, now: std::time::SystemTime) -> Vec<AttributeRow> {
    entity
        .attributes
        .iter()
        .map(|(name, state)| {
            let updated = state.reported.as_ref().map(|r| {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.observed_at.max(0) as u64);
                // Two units are precise enough ("1m 30s", "26years 10months") and keep the panel narrow.
                let ago = now.duration_since(at).map(|d| {
                    let d = humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string();
                    d.split(' ').take(2).collect::<Vec<_>>().join(" ")
                });
                let ago = ago.map_or_else(|_| "in the future".into(), |d| format!("{d} ago"));
                format!("{} ({ago})", humantime::format_rfc3339_seconds(at))
            });
            AttributeRow {
                name: name.to_string(),
                reported: state.reported.as_ref().map_or_else(|| "-".into(), |r| show(&r.value)),
                desired: state.desired.as_ref().map(|d| show(&d.value)).unwrap_or_default(),
                updated: updated.unwrap_or_default(),
            }
        })
        .collect()
}

fn show(v: &Value) -> String {
    match v {
        Value::Number(x) => format!("{x:.2}"),
        Value::Integer(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Text(t) => t.clone(),
        Value::Point(p) => format!("{:.5}, {:.5}", p.lon, p.lat),
    }
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_some() {
            return;
        }
        match self.open_gfx(event_loop) {
            Ok(gfx) => {
                // Scripts and tests read this line.
                println!("viewer: window open, adapter {} / {:?}", gfx.gpu.adapter.name, gfx.gpu.adapter.backend);
                std::io::Write::flush(&mut std::io::stdout()).ok();
                self.gfx = Some(gfx);
            }
            Err(e) => {
                eprintln!("viewer: {e}");
                event_loop.exit();
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let consumed = match self.gfx.as_mut() {
            Some(gfx) => gfx.egui_state.on_window_event(&gfx.window, &event).consumed,
            None => false,
        };
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Resized(size) => {
                if let Some(gfx) = self.gfx.as_mut() {
                    gfx.config.width = size.width.max(1);
                    gfx.config.height = size.height.max(1);
                    gfx.surface.configure(&gfx.gpu.device, &gfx.config);
                    gfx.targets = FrameTargets::new(&gfx.gpu, gfx.config.width, gfx.config.height, gfx.config.format);
                }
            }
            WindowEvent::RedrawRequested => self.redraw(),
            WindowEvent::CursorMoved { position, .. } => {
                let (dx, dy) = (position.x - self.cursor.0, position.y - self.cursor.1);
                self.cursor = (position.x, position.y);
                if let Some((button, start, moved)) = self.drag.as_mut() {
                    *moved |= (position.x - start.0).hypot(position.y - start.1) > 4.0;
                    let cam = &mut self.camera;
                    match button {
                        MouseButton::Left => {
                            cam.heading += dx as f32 * 0.005;
                            cam.pitch = (cam.pitch + dy as f32 * 0.005).clamp(5f32.to_radians(), 89f32.to_radians());
                        }
                        _ => {
                            let scale = cam.distance * 0.0015;
                            let (s, c) = cam.heading.sin_cos();
                            let right = Vec3::new(c, 0.0, s);
                            let forward = Vec3::new(s, 0.0, -c);
                            cam.target += (-right * dx as f32 + forward * dy as f32) * scale;
                        }
                    }
                }
            }
            WindowEvent::MouseInput { state, button, .. } if !consumed => match state {
                ElementState::Pressed => self.drag = Some((button, self.cursor, false)),
                ElementState::Released => {
                    if let Some((MouseButton::Left, at, false)) = self.drag.take() {
                        self.pick(at);
                    }
                }
            },
            WindowEvent::MouseWheel { delta, .. } if !consumed => {
                let lines = match delta {
                    MouseScrollDelta::LineDelta(_, y) => y,
                    MouseScrollDelta::PixelDelta(p) => p.y as f32 / 40.0,
                };
                self.camera.distance = (self.camera.distance * 0.9f32.powf(lines)).clamp(30.0, 200_000.0);
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        if self.stop.load(Ordering::Relaxed) {
            event_loop.exit();
            return;
        }
        if let Some(gfx) = self.gfx.as_ref() {
            gfx.window.request_redraw();
        }
    }
}

#[cfg(test)]
mod tests {
    use twin_model::{AttrName, AttributeState, EntityId, EntityStatic, Reported, TypeName};

    use super::*;

    #[test]
    fn the_panel_shows_reported_desired_and_when_for_a_building_as_for_a_sensor() {
        let mut building = Entity::new(EntityStatic {
            id: EntityId::new("urn:ngsi-ld:Building:t:1").unwrap(),
            entity_type: TypeName::new("Building").unwrap(),
            geometry: None,
            relationships: Default::default(),
        });
        let at = |ms: i64, value: Value| Reported { value, observed_at: ms, received_at: ms, revision: 1 };
        building.attributes.insert(
            AttrName::new("energyUse").unwrap(),
            AttributeState { reported: Some(at(1_767_225_600_000, Value::Number(412.5))), desired: None },
        );
        building.attributes.insert(
            AttrName::new("hvacSetpoint").unwrap(),
            AttributeState { reported: None, desired: Some(at(1_767_225_660_000, Value::Number(24.0))) },
        );
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_767_225_690_000);
        let rows = attribute_rows(&building, now);
        assert_eq!(
            rows,
            vec![
                AttributeRow {
                    name: "energyUse".into(),
                    reported: "412.50".into(),
                    desired: String::new(),
                    updated: "2026-01-01T00:00:00Z (1m 30s ago)".into(),
                },
                AttributeRow {
                    name: "hvacSetpoint".into(),
                    reported: "-".into(),
                    desired: "24.00".into(),
                    updated: String::new(),
                },
            ]
        );
    }

    #[test]
    fn the_edge_legend_names_every_link_state_and_the_colour_before_the_first_report() {
        let labels: Vec<String> = edge_legend().into_iter().map(|(l, _)| l).collect();
        assert_eq!(labels, ["connected", "degraded", "disconnected", "no report yet"]);
    }
}
