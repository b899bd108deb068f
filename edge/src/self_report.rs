//! The agent's report on itself: an `EdgeNode` entity in the twin, so operators see their boxes next to
//! the sensors they feed.
//!
//! Every report is a set of readings of the box's own entity, appended to the outbox like any sensor's (so
//! they survive outages and arrive in order). The values are what the box knows at that moment; while the
//! link is down they reach the cloud late, which is why `lastAckAt` is part of the report: the cloud can
//! always tell how old a box's view is.

use twin_model::{AttrName, EntityId, TypeName, UnixMs, Value};
use twin_outbox::{OutboxStats, OutboxUpdate};

use crate::{source::Reading, uplink::UplinkStats};

/// The catalog type of the report.
pub const EDGE_NODE_TYPE: &str = "EdgeNode";

/// After a failed session, the link counts as degraded (flapping) for this long even once reconnected.
pub const DEGRADED_FOR_MS: i64 = 30_000;

/// The state of the link to the cloud, as `EdgeNode.linkState` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Connected, with no failure in the last [`DEGRADED_FOR_MS`].
    Connected,
    /// Connected, but a session failed recently: the link is flapping.
    Degraded,
    /// No session.
    Disconnected,
}

impl LinkState {
    /// The state from the uplink's stats at `now`.
    pub fn of(uplink: &UplinkStats, now: UnixMs) -> LinkState {
        match (uplink.connected, uplink.last_failure_at_ms) {
            (false, _) => LinkState::Disconnected,
            (true, Some(at)) if now - at < DEGRADED_FOR_MS => LinkState::Degraded,
            (true, _) => LinkState::Connected,
        }
    }

    /// The catalog's value.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connected => "connected",
            LinkState::Degraded => "degraded",
            LinkState::Disconnected => "disconnected",
        }
    }
}

/// What the report is made of.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The box's entity.
    pub entity: &'a EntityId,
    /// The uplink's counters.
    pub uplink: &'a UplinkStats,
    /// The outbox's counters.
    pub outbox: &'a OutboxStats,
    /// Sensors this box reads.
    pub sensors: u64,
    /// Source messages that could not be mapped (e.g. malformed MQTT payloads).
    pub unmappable: u64,
    /// When the report is made (box clock).
    pub now: UnixMs,
}

/// Interned names, so a report allocates only its values.
#[derive(Debug, Clone)]
pub struct SelfReport {
    entity_type: TypeName,
    names: [AttrName; 15],
}

const NAMES: [&str; 15] = [
    "linkState",
    "outboxDepth",
    "oldestUnsentAgeS",
    "lastAckAt",
    "bytesSent",
    "updatesSent",
    "deadLetters",
    "rejectedUpdates",
    "firmwareVersion",
    "droppedByPolicy",
    "refusedWhenFull",
    "diskUsedBytes",
    "diskBudgetBytes",
    "sensors",
    "unmappableMessages",
];

fn int(v: u64) -> Value {
    Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

impl SelfReport {
    /// The report's names.
    pub fn new() -> SelfReport {
        #[allow(clippy::expect_used)] // constant, valid names: covered by the tests
        let names = NAMES.map(|n| AttrName::new(n).expect("valid attribute name"));
        #[allow(clippy::expect_used)]
        let entity_type = TypeName::new(EDGE_NODE_TYPE).expect("valid type name");
        SelfReport { entity_type, names }
    }

    /// The readings of one report.
    pub fn readings(&self, input: &ReportInput<'_>) -> Vec<Reading> {
        let (u, o) = (input.uplink, input.outbox);
        let oldest_s = o.oldest_age_ms.map_or(0.0, |ms| ms.max(0) as f64 / 1000.0);
        let values = [
            Some(Value::Text(LinkState::of(u, input.now).as_str().to_owned())),
            Some(int(o.depth_updates)),
            Some(Value::Number(oldest_s)),
            u.last_ack_at_ms.map(Value::Integer),
            Some(int(u.bytes_sent)),
            Some(int(u.updates_sent)),
            Some(int(o.dead_letters)),
            Some(int(u.dead_lettered)),
            Some(Value::Text(env!("CARGO_PKG_VERSION").to_owned())),
            Some(int(o.dropped_by_policy)),
            Some(int(o.rejected_when_full)),
            Some(int(o.used_bytes)),
            Some(int(o.budget_bytes)),
            Some(int(input.sensors)),
            Some(int(input.unmappable)),
        ];
        self.names
            .iter()
            .zip(values)
            .filter_map(|(name, value)| {
                Some(Reading {
                    entity_type: self.entity_type.clone(),
                    update: OutboxUpdate {
                        entity: input.entity.clone(),
                        attribute: name.clone(),
                        value: value?,
                        observed_at: input.now,
                    },
                })
            })
            .collect()
    }
}

impl Default for SelfReport {
    fn default() -> Self {
        SelfReport::new()
    }
}

#[cfg(test)]
mod tests {
    use twin_model::{Catalog, now_unix_ms};

    use super::*;

    #[test]
    fn every_reading_passes_the_catalog() {
        let catalog = Catalog::builtin();
        let entity = EntityId::new("urn:ngsi-ld:EdgeNode:furong-1").unwrap();
        let now = now_unix_ms();
        let uplink = UplinkStats {
            connected: true,
            last_ack_at_ms: Some(now - 5),
            bytes_sent: 1234,
            updates_sent: 99,
            ..Default::default()
        };
        let outbox =
            OutboxStats { depth_updates: 7, oldest_age_ms: Some(2_500), budget_bytes: 1 << 30, ..Default::default() };
        let readings = SelfReport::new().readings(&ReportInput {
            entity: &entity,
            uplink: &uplink,
            outbox: &outbox,
            sensors: 12,
            unmappable: 3,
            now,
        });
        assert_eq!(readings.len(), NAMES.len());
        for r in &readings {
            let u = &r.update;
            catalog.check_value(&r.entity_type, &u.attribute, u.value.clone()).unwrap_or_else(|v| panic!("{v:?}"));
        }
        let get = |n: &str| readings.iter().find(|r| r.update.attribute.as_str() == n).map(|r| r.update.value.clone());
        assert_eq!(get("linkState"), Some(Value::Text("connected".into())));
        assert_eq!(get("oldestUnsentAgeS"), Some(Value::Number(2.5)));
        assert_eq!(get("outboxDepth"), Some(Value::Integer(7)));
    }

    #[test]
    fn link_state_follows_the_uplink() {
        let now = 1_000_000;
        let mut u = UplinkStats::default();
        assert_eq!(LinkState::of(&u, now), LinkState::Disconnected);
        u.connected = true;
        assert_eq!(LinkState::of(&u, now), LinkState::Connected);
        u.last_failure_at_ms = Some(now - 1_000);
        assert_eq!(LinkState::of(&u, now), LinkState::Degraded);
        u.last_failure_at_ms = Some(now - DEGRADED_FOR_MS);
        assert_eq!(LinkState::of(&u, now), LinkState::Connected);
    }

    #[test]
    fn no_ack_yet_leaves_last_ack_out() {
        let entity = EntityId::new("urn:ngsi-ld:EdgeNode:x").unwrap();
        let r = SelfReport::new().readings(&ReportInput {
            entity: &entity,
            uplink: &UplinkStats::default(),
            outbox: &OutboxStats::default(),
            sensors: 0,
            unmappable: 0,
            now: 1_000_000_000_000,
        });
        assert!(r.iter().all(|r| r.update.attribute.as_str() != "lastAckAt"));
    }
}
