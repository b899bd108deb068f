//! Following the cloud: `Watch` changes recolour only the glyphs of the entities that changed.
//!
//! [`LiveState`] keeps the reported values a colour depends on (a change carries only the attributes
//! that changed, but a street light's colour needs both `powerState` and `illuminanceLevel`) and turns a
//! `WatchResponse` into the glyph indices to rewrite. [`follow`] runs the stream off the render thread:
//! it resumes after the last revision it saw when the connection drops, re-lists when the change log no
//! longer reaches back that far, and reports the link's state so the window can show it.
//! [`merge_change`] keeps an entity's reported and desired state current for the attribute panel, for
//! every entity (a building as much as a sensor).

use std::{collections::HashMap, time::Duration};

use tokio::sync::mpsc;
use tonic::Code;
use twin_model::{AttrName, Entity, Reported, Value};
use twin_proto::pb::{self, twin_service_client::TwinServiceClient};

use crate::{
    client::{self, ClientError},
    scene::{Scene, glyph_color},
    style::live_color,
};

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

    /// Applies one Watch message to the scene; returns the glyphs whose colour changed.
    pub fn apply(&mut self, scene: &mut Scene, response: &pb::WatchResponse) -> Vec<usize> {
        let mut dirty = Vec::new();
        for change in &response.changes {
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
                dirty.push(index);
            }
        }
        self.revision = self.revision.max(response.revision);
        dirty
    }
}

/// Applies one change's attributes to `entity`'s state: a reported value replaces the known one unless it
/// was observed earlier (the cloud's own last-writer-wins rule, so a late replay cannot roll it back); a
/// desired value, when the change carries one, replaces the desired one. Returns whether anything changed.
pub fn merge_change(entity: &mut Entity, change: &pb::Change) -> bool {
    let mut changed = false;
    let attributes = change.attributes.iter().chain(change.entity.iter().flat_map(|e| e.attributes.iter()));
    for a in attributes {
        let Ok(name) = AttrName::new(&a.name) else { continue };
        let state = entity.attributes.entry(name).or_default();
        if let Some(value) = a.reported.clone().and_then(|v| Value::try_from(v).ok())
            && state.reported.as_ref().is_none_or(|r| r.observed_at <= a.observed_at_unix_ms)
        {
            state.reported = Some(Reported {
                value,
                observed_at: a.observed_at_unix_ms,
                received_at: a.received_at_unix_ms,
                revision: a.revision,
            });
            changed = true;
        }
        if let Some(value) = a.desired.clone().and_then(|v| Value::try_from(v).ok()) {
            state.desired = Some(Reported {
                value,
                observed_at: a.desired_at_unix_ms,
                received_at: a.desired_at_unix_ms,
                revision: a.revision,
            });
            changed = true;
        }
    }
    entity.revision = entity.revision.max(change.revision);
    changed
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
    use twin_model::{EntityId, EntityStatic, Geometry, TypeName};

    use super::*;

    fn station(i: usize) -> Entity {
        Entity::new(EntityStatic {
            id: EntityId::new(&format!("urn:ngsi-ld:AirQualityObserved:t:{i}")).unwrap(),
            entity_type: TypeName::new("AirQualityObserved").unwrap(),
            geometry: Some(Geometry::point(112.9 + i as f64 * 0.01, 28.2)),
            relationships: Default::default(),
        })
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
        let dirty = live.apply(&mut scene, &r);
        assert_eq!(dirty, vec![scene.glyph_index["urn:ngsi-ld:AirQualityObserved:t:1"]]);
        assert_eq!(scene.glyphs[dirty[0]].color, crate::scene::srgb(255, 0, 0));
        assert_eq!(live.revision, 11);
        // The same band again changes nothing; other glyphs never changed.
        let again = pb::WatchResponse { changes: vec![aqi_change(1, 190, 12)], revision: 12, snapshot_complete: false };
        assert!(live.apply(&mut scene, &again).is_empty());
        for (i, (now, was)) in scene.glyphs.iter().zip(&before).enumerate() {
            if i != dirty[0] {
                assert_eq!(now, was);
            }
        }
        // Unknown entities are ignored.
        let stray = pb::WatchResponse { changes: vec![aqi_change(9, 10, 13)], revision: 13, snapshot_complete: false };
        assert!(live.apply(&mut scene, &stray).is_empty());
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
    }
}
