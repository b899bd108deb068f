//! Following the cloud: `Watch` changes recolour only the glyphs of the entities that changed.
//!
//! [`LiveState`] keeps the reported values a colour depends on (a change carries only the attributes
//! that changed, but a street light's colour needs both `powerState` and `illuminanceLevel`) and turns a
//! `WatchResponse` into the glyph indices to rewrite. [`follow`] runs the stream off the render thread:
//! it resumes after the last revision it saw when the connection drops, re-lists when the change log no
//! longer reaches back that far, and reports the link's state so the window can show it.
//! Entities that appear while the viewer runs (an edge box registering itself and its sensors) get a
//! glyph at once when they are points ([`Applied::added`]); a new or changed polygon or line changes the
//! city's layout, and the scene is rebuilt from [`KnownEntities`] once such changes have settled.
//! [`merge_change`] keeps an entity's reported and desired state current for the attribute panel, for
//! every entity (a building as much as a sensor).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use tonic::Code;
use twin_model::{AttrName, Entity, Reported, Value};
use twin_proto::pb::{self, twin_service_client::TwinServiceClient};

use crate::{
    client::{self, ClientError, entity_from_pb},
    scene::{Scene, glyph_color},
    style::live_color,
};

/// How long the city's layout must stay unchanged before the scene is rebuilt for new or changed polygons:
/// loading a district sends its buildings in many messages, and each rebuild takes a while.
pub const REBUILD_AFTER: Duration = Duration::from_secs(2);

/// What one Watch message did to the scene.
#[derive(Debug, Default)]
pub struct Applied {
    /// Glyphs whose colour changed.
    pub dirty: Vec<usize>,
    /// Entities that got a new glyph (the renderer must upload the glyphs again).
    pub added: Vec<Entity>,
    /// New or changed entities that are not points: the scene needs a rebuild.
    pub layout: Vec<Entity>,
}

/// The live values behind the glyph colours.
#[derive(Debug, Default)]
pub struct LiveState {
    values: HashMap<String, (String, HashMap<String, Value>)>,
    /// The last revision applied: a resumed Watch starts after it.
    pub revision: u64,
}

impl LiveState {
    /// Starts from a listing taken at `revision`.
    pub fn new(entities: &[Entity], scene: &Scene, revision: u64) -> LiveState {
        let mut values = HashMap::new();
        for e in entities.iter().filter(|e| scene.glyph_index.contains_key(e.header.id.as_str())) {
            let attrs = e
                .attributes
                .iter()
                .filter_map(|(name, state)| Some((name.to_string(), state.reported.as_ref()?.value.clone())))
                .collect();
            values.insert(e.header.id.to_string(), (e.header.entity_type.to_string(), attrs));
        }
        LiveState { values, revision }
    }

    /// The latest values known for an entity with a glyph.
    pub fn values(&self, entity_id: &str) -> Option<&HashMap<String, Value>> {
        self.values.get(entity_id).map(|(_, v)| v)
    }

    /// Applies one Watch message to the scene: recolours the glyphs of changed entities, adds glyphs for new
    /// points, and reports new or changed entities of other shapes.
    pub fn apply(&mut self, scene: &mut Scene, response: &pb::WatchResponse) -> Applied {
        let mut applied = Applied::default();
        for change in &response.changes {
            if change.kind == pb::change::Kind::Upsert as i32
                && let Some(entity) = change.entity.as_ref().and_then(|e| entity_from_pb(e).ok())
            {
                if scene.glyph_index.contains_key(&change.entity_id) {
                    // A known point's header changed (a move, a new relationship): rebuild to place it.
                    applied.layout.push(entity);
                } else if scene.add_point(&entity).is_some() {
                    let t = entity.header.entity_type.to_string();
                    self.values.insert(change.entity_id.clone(), (t, HashMap::new()));
                    applied.added.push(entity);
                } else if entity.header.geometry.is_some() {
                    applied.layout.push(entity);
                }
            }
            let Some(&index) = scene.glyph_index.get(&change.entity_id) else { continue };
            let (entity_type, attrs) = self
                .values
                .entry(change.entity_id.clone())
                .or_insert_with(|| (change.entity_type.clone(), HashMap::new()));
            let updates = change.attributes.iter().chain(change.entity.iter().flat_map(|e| e.attributes.iter()));
            for a in updates {
                if let Some(v) = a.reported.clone().and_then(|v| Value::try_from(v).ok()) {
                    attrs.insert(a.name.clone(), v);
                }
            }
            let color = live_color(entity_type, |name| attrs.get(name)).unwrap_or_else(|| glyph_color(entity_type));
            if scene.glyphs[index].color != color {
                scene.glyphs[index].color = color;
                applied.dirty.push(index);
            }
        }
        self.revision = self.revision.max(response.revision);
        applied
    }
}

/// Every entity the viewer knows, by id, kept current from Watch: the attribute panel reads it, and the
/// scene is rebuilt from it when the city's layout changes.
#[derive(Debug, Default)]
pub struct KnownEntities {
    entities: HashMap<String, Entity>,
    rebuild_at: Option<Instant>,
}

impl KnownEntities {
    /// From a listing.
    pub fn new(entities: Vec<Entity>) -> KnownEntities {
        KnownEntities {
            entities: entities.into_iter().map(|e| (e.header.id.to_string(), e)).collect(),
            rebuild_at: None,
        }
    }

    /// An entity by id.
    pub fn get(&self, id: &str) -> Option<&Entity> {
        self.entities.get(id)
    }

    /// Takes in one Watch message after [`LiveState::apply`]: new entities, changed headers (attributes
    /// kept) and attribute values. A layout change (re)starts the wait for a rebuild.
    pub fn absorb(&mut self, response: &pb::WatchResponse, applied: Applied, now: Instant) {
        for entity in applied.added {
            self.entities.insert(entity.header.id.to_string(), entity);
        }
        if !applied.layout.is_empty() {
            self.rebuild_at = Some(now + REBUILD_AFTER);
        }
        for entity in applied.layout {
            match self.entities.get_mut(entity.header.id.as_str()) {
                Some(known) => known.header = entity.header,
                None => {
                    self.entities.insert(entity.header.id.to_string(), entity);
                }
            }
        }
        for change in &response.changes {
            if let Some(entity) = self.entities.get_mut(&change.entity_id) {
                merge_change(entity, change);
            }
        }
    }

    /// Every entity, once a layout change has settled ([`REBUILD_AFTER`] without another); the caller
    /// rebuilds the scene from them.
    pub fn rebuild_due(&mut self, now: Instant) -> Option<Vec<Entity>> {
        if self.rebuild_at.is_some_and(|at| now >= at) {
            self.rebuild_at = None;
            return Some(self.entities.values().cloned().collect());
        }
        None
    }
}

/// Applies one change's attributes to `entity`'s state: a reported value replaces the known one unless it
/// was observed earlier, and a desired value the known desired one unless it was set earlier (the cloud's
/// own last-writer-wins rule, so a late replay rolls back neither). Returns whether anything changed.
pub fn merge_change(entity: &mut Entity, change: &pb::Change) -> bool {
    let mut changed = false;
    let attributes = change.attributes.iter().chain(change.entity.iter().flat_map(|e| e.attributes.iter()));
    for a in attributes {
        let Ok(name) = AttrName::new(&a.name) else { continue };
        let state = entity.attributes.entry(name).or_default();
        let reported = (a.observed_at_unix_ms, a.received_at_unix_ms);
        changed |= take_newer(&mut state.reported, a.reported.as_ref(), reported, a.revision);
        let desired = (a.desired_at_unix_ms, a.desired_at_unix_ms);
        changed |= take_newer(&mut state.desired, a.desired.as_ref(), desired, a.revision);
    }
    entity.revision = entity.revision.max(change.revision);
    changed
}

/// Replaces `known` with `incoming` (observed, received) unless `known` was observed later.
fn take_newer(known: &mut Option<Reported>, incoming: Option<&pb::Value>, at: (i64, i64), revision: u64) -> bool {
    let Some(value) = incoming.cloned().and_then(|v| Value::try_from(v).ok()) else { return false };
    if known.as_ref().is_some_and(|k| k.observed_at > at.0) {
        return false;
    }
    *known = Some(Reported { value, observed_at: at.0, received_at: at.1, revision });
    true
}

/// What the follower tells the render thread.
#[derive(Debug)]
pub enum LiveEvent {
    /// The Watch stream is open.
    Connected,
    /// The connection dropped (the reason); it reconnects and resumes by itself.
    Disconnected(String),
    /// Changes to apply, in order.
    Changes(pb::WatchResponse),
    /// The change log no longer reaches back to the last revision: the city was listed again.
    Relisted(Vec<Entity>, u64),
}

/// Watches `url` from `after_revision` until the receiver of `events` is dropped, reconnecting with backoff and resuming
/// from the last revision delivered.
pub async fn follow(url: String, mut after_revision: u64, events: mpsc::Sender<LiveEvent>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let result = watch_once(&url, &mut after_revision, &events).await;
        let reason = match result {
            Ok(()) => "the cloud ended the stream".to_owned(),
            Err(WatchError::Closed) => return,
            Err(WatchError::TooOld) => match relist(&url).await {
                Ok((entities, revision)) => {
                    after_revision = revision;
                    if events.send(LiveEvent::Relisted(entities, revision)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => e.to_string(),
            },
            Err(WatchError::Link(e)) => e,
        };
        if events.send(LiveEvent::Disconnected(reason)).await.is_err() {
            return;
        }
        tokio::select! {
            () = events.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum WatchError {
    Closed,
    TooOld,
    Link(String),
}

async fn relist(url: &str) -> Result<(Vec<Entity>, u64), ClientError> {
    client::list_all(client::connect(url).await?, |_| {}).await
}

async fn watch_once(url: &str, after: &mut u64, events: &mpsc::Sender<LiveEvent>) -> Result<(), WatchError> {
    let channel = client::connect(url).await.map_err(|e| WatchError::Link(e.to_string()))?;
    let mut twin = TwinServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let request = pb::WatchRequest { after_revision: Some(*after), ..Default::default() };
    let mut stream = match twin.watch(request).await {
        Ok(s) => s.into_inner(),
        Err(status) if status.code() == Code::OutOfRange => return Err(WatchError::TooOld),
        Err(status) => return Err(WatchError::Link(status.to_string())),
    };
    events.send(LiveEvent::Connected).await.map_err(|_| WatchError::Closed)?;
    loop {
        let message = tokio::select! {
            () = events.closed() => return Err(WatchError::Closed),
            m = stream.message() => m,
        };
        match message {
            Ok(Some(response)) => {
                *after = (*after).max(response.revision);
                events.send(LiveEvent::Changes(response)).await.map_err(|_| WatchError::Closed)?;
            }
            Ok(None) => return Ok(()),
            Err(status) if status.code() == Code::OutOfRange || status.code() == Code::Aborted => {
                // Fell behind: resume from the change log, or re-list if it is gone.
                return if status.code() == Code::OutOfRange { Err(WatchError::TooOld) } else { Ok(()) };
            }
            Err(status) => return Err(WatchError::Link(status.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use twin_model::Geometry;

    use super::*;
    use crate::testing::{edge_box, entity};

    fn station(i: usize) -> Entity {
        let id = format!("urn:ngsi-ld:AirQualityObserved:t:{i}");
        entity(&id, "AirQualityObserved", Geometry::point(112.9 + i as f64 * 0.01, 28.2))
    }

    fn aqi_change(i: usize, aqi: i64, revision: u64) -> pb::Change {
        pb::Change {
            kind: pb::change::Kind::Attributes as i32,
            revision,
            entity_id: format!("urn:ngsi-ld:AirQualityObserved:t:{i}"),
            entity_type: "AirQualityObserved".into(),
            attributes: vec![pb::Attribute {
                name: "aqi".into(),
                reported: Some(pb::Value { kind: Some(pb::value::Kind::Integer(aqi)) }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_change_recolours_only_the_glyph_it_moves_to_another_band() {
        let entities: Vec<Entity> = (0..3).map(station).collect();
        let mut scene = Scene::build(&entities);
        let mut live = LiveState::new(&entities, &scene, 10);
        let before = scene.glyphs.clone();
        let r = pb::WatchResponse { changes: vec![aqi_change(1, 180, 11)], revision: 11, snapshot_complete: false };
        let dirty = live.apply(&mut scene, &r).dirty;
        assert_eq!(dirty, vec![scene.glyph_index["urn:ngsi-ld:AirQualityObserved:t:1"]]);
        assert_eq!(scene.glyphs[dirty[0]].color, crate::scene::srgb(255, 0, 0));
        assert_eq!(live.revision, 11);
        // The same band again changes nothing; other glyphs never changed.
        let again = pb::WatchResponse { changes: vec![aqi_change(1, 190, 12)], revision: 12, snapshot_complete: false };
        assert!(live.apply(&mut scene, &again).dirty.is_empty());
        for (i, (now, was)) in scene.glyphs.iter().zip(&before).enumerate() {
            if i != dirty[0] {
                assert_eq!(now, was);
            }
        }
        // Unknown entities are ignored.
        let stray = pb::WatchResponse { changes: vec![aqi_change(9, 10, 13)], revision: 13, snapshot_complete: false };
        let applied = live.apply(&mut scene, &stray);
        assert!(applied.dirty.is_empty() && applied.added.is_empty() && applied.layout.is_empty());
    }

    fn upsert(entity: &Entity, revision: u64) -> pb::Change {
        pb::Change {
            kind: pb::change::Kind::Upsert as i32,
            revision,
            entity_id: entity.header.id.to_string(),
            entity_type: entity.header.entity_type.to_string(),
            entity: Some(twin_proto::convert::header_to_pb(&entity.header, revision)),
            attributes: Vec::new(),
        }
    }

    fn district(id: &str, lon: f64) -> Entity {
        let square = [(lon, 28.1), (lon + 0.1, 28.1), (lon + 0.1, 28.3), (lon, 28.3)];
        let ring = square.iter().map(|&(lon, lat)| twin_model::GeoPoint { lon, lat }).collect();
        entity(id, "District", Geometry { shape: twin_model::Shape::Polygon(ring), height_m: 0.0 })
    }

    #[test]
    fn an_edge_box_that_registers_later_gets_its_glyph_and_link_and_then_its_colour() {
        let mut entities: Vec<Entity> = (0..3).map(station).collect();
        entities.push(district("urn:ngsi-ld:District:changsha:yuelu", 112.85));
        let mut scene = Scene::build(&entities);
        let mut live = LiveState::new(&entities, &scene, 10);
        let mut known = KnownEntities::new(entities);
        let edge_box = edge_box("changsha:edge-yuelu", 112.93, 28.22, "urn:ngsi-ld:District:changsha:yuelu", None);
        let mut link = aqi_change(0, 0, 12);
        link.entity_id = edge_box.header.id.to_string();
        link.entity_type = crate::scene::EDGE_NODE.into();
        link.attributes[0].name = "linkState".into();
        link.attributes[0].reported = Some(pb::Value { kind: Some(pb::value::Kind::Text("connected".into())) });
        let r =
            pb::WatchResponse { changes: vec![upsert(&edge_box, 11), link], revision: 12, snapshot_complete: false };
        let glyphs = scene.glyphs.len();
        let applied = live.apply(&mut scene, &r);

        assert_eq!(scene.glyphs.len(), glyphs + 1, "a glyph for the new box");
        let index = scene.glyph_index[edge_box.header.id.as_str()];
        assert_eq!(applied.added.len(), 1);
        assert!(applied.layout.is_empty(), "a point needs no rebuild");
        assert_eq!(applied.dirty, vec![index], "its link state, in the same message, colours it");
        assert_ne!(scene.glyphs[index].color, glyph_color(crate::scene::EDGE_NODE));
        assert!(scene.is_edge_glyph(index));
        let edge = scene.edges.iter().find(|e| e.glyph == index).expect("an edge box marker");
        assert!(edge.district_center.is_some(), "linked to its district");
        known.absorb(&r, applied, Instant::now());
        let panel = known.get(edge_box.header.id.as_str()).expect("the panel knows it");
        assert_eq!(panel.reported("linkState"), Some(&Value::Text("connected".into())));
        assert!(known.rebuild_due(Instant::now() + REBUILD_AFTER).is_none(), "no rebuild for a point");
    }

    #[test]
    fn new_polygons_rebuild_the_scene_once_they_have_settled() {
        let entities: Vec<Entity> = (0..2).map(station).collect();
        let mut scene = Scene::build(&entities);
        let mut live = LiveState::new(&entities, &scene, 10);
        let mut known = KnownEntities::new(entities);
        let t0 = Instant::now();
        for (k, lon) in [112.7, 112.8].into_iter().enumerate() {
            let d = district(&format!("urn:ngsi-ld:District:changsha:d{k}"), lon);
            let r =
                pb::WatchResponse { changes: vec![upsert(&d, 11 + k as u64)], revision: 11, snapshot_complete: false };
            let applied = live.apply(&mut scene, &r);
            assert_eq!(applied.layout.len(), 1);
            known.absorb(&r, applied, t0 + Duration::from_secs(k as u64));
        }
        assert!(known.rebuild_due(t0 + REBUILD_AFTER).is_none(), "the second district restarted the wait");
        let entities = known.rebuild_due(t0 + Duration::from_secs(1) + REBUILD_AFTER).expect("a rebuild");
        assert_eq!(entities.len(), 4);
        assert_eq!(Scene::build(&entities).district_centers.len(), 2);
        assert!(known.rebuild_due(t0 + Duration::from_secs(60)).is_none(), "once");
    }

    #[test]
    fn the_panel_state_takes_newer_reported_values_and_desired_ones_but_never_an_older_reading() {
        let mut e = station(0);
        let reading = |aqi: i64, at: i64| {
            let mut c = aqi_change(0, aqi, 5);
            c.attributes[0].observed_at_unix_ms = at;
            c
        };
        assert!(merge_change(&mut e, &reading(40, 2_000)));
        assert_eq!(e.reported("aqi"), Some(&Value::Integer(40)));
        // A late replay of an older reading does not roll the value back.
        assert!(!merge_change(&mut e, &reading(300, 1_000)));
        assert_eq!(e.reported("aqi"), Some(&Value::Integer(40)));
        let mut desired = reading(40, 2_000);
        desired.attributes[0].reported = None;
        desired.attributes[0].desired = Some(pb::Value { kind: Some(pb::value::Kind::Integer(10)) });
        desired.attributes[0].desired_at_unix_ms = 3_000;
        assert!(merge_change(&mut e, &desired));
        let state = &e.attributes[&AttrName::new("aqi").unwrap()];
        assert_eq!(state.desired.as_ref().map(|d| (&d.value, d.observed_at)), Some((&Value::Integer(10), 3_000)));
        assert_eq!(state.reported.as_ref().map(|r| r.observed_at), Some(2_000));
        // Nor does a late replay of an older desired value.
        let mut older = desired.clone();
        older.attributes[0].desired = Some(pb::Value { kind: Some(pb::value::Kind::Integer(99)) });
        older.attributes[0].desired_at_unix_ms = 2_500;
        assert!(!merge_change(&mut e, &older));
        let state = &e.attributes[&AttrName::new("aqi").unwrap()];
        assert_eq!(state.desired.as_ref().map(|d| &d.value), Some(&Value::Integer(10)));
    }
}
