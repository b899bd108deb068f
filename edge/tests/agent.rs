//! The agent against an in-process cloud: readings through the deadband and outbox to the cloud, the
//! box's self-report, and the outbox-full policies during an outage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use edge::{
    agent::{Agent, AgentSetup},
    deadband::{DeadbandConfig, Rule, Threshold},
    source::Reading,
    uplink::{Registration, UplinkConfig},
};
use twin_e2e::{Fault, FaultProxy, InProcessCloud, WAIT, now_ms, reported, station_id, wait_until};
use twin_model::{AttrName, Catalog, EdgeId, Entity, EntityId, EntityStatic, Geometry, TypeName, Value};
use twin_outbox::{OutboxConfig, OutboxUpdate, WhenFull};
use twin_proto::pb::value::Kind;

const STATIONS: usize = 10;

fn node_id(edge: &str) -> EntityId {
    EntityId::new(&format!("urn:ngsi-ld:EdgeNode:{edge}")).unwrap()
}

/// The stations and the box's own entity, registered by the uplink before it sends.
fn registration(edge: &str) -> Registration {
    let entity = |id: &str, t: &str, i: usize| {
        Entity::new(EntityStatic {
            id: EntityId::new(id).unwrap(),
            entity_type: TypeName::new(t).unwrap(),
            geometry: Some(Geometry::point(112.97 + i as f64 * 0.001, 28.19)),
            relationships: Default::default(),
        })
    };
    let mut entities: Vec<Entity> = (0..STATIONS).map(|i| entity(&station_id(i), "AirQualityObserved", i)).collect();
    entities.push(entity(&node_id(edge), "EdgeNode", 0));
    Registration { catalog: Arc::new(Catalog::builtin()), entities: Arc::new(entities) }
}

fn setup(edge: &str, url: String, dir: &std::path::Path, tweak: impl FnOnce(&mut OutboxConfig)) -> AgentSetup {
    let mut outbox = OutboxConfig::new(dir.join("outbox"));
    outbox.fsync = false;
    outbox.max_batch_updates = 50;
    tweak(&mut outbox);
    let uplink = UplinkConfig {
        seal_interval: Duration::from_millis(50),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(300),
        register: Some(registration(edge)),
        ..UplinkConfig::new(EdgeId::new(edge).unwrap(), url)
    };
    // Every change is sent: these tests count what arrives.
    let deadband = DeadbandConfig {
        default: Some(Rule { threshold: Some(Threshold::AnyChange), heartbeat: None }),
        ..Default::default()
    };
    AgentSetup {
        catalog: Arc::new(Catalog::builtin()),
        node_entity: node_id(edge),
        sensors: STATIONS as u64,
        deadband,
        outbox,
        uplink,
        self_report_interval: Duration::from_millis(200),
    }
}

/// Reading `k`: station `k % STATIONS`, pm25 derived from `k`, observed at `t0 + k`.
fn reading(k: usize, t0: i64) -> Reading {
    Reading {
        entity_type: TypeName::new("AirQualityObserved").unwrap(),
        update: OutboxUpdate {
            entity: EntityId::new(&station_id(k % STATIONS)).unwrap(),
            attribute: AttrName::new("pm25").unwrap(),
            value: Value::Number(value_of(k)),
            observed_at: t0 + k as i64,
        },
    }
}

fn value_of(k: usize) -> f64 {
    (k % 500) as f64 + 0.25
}

async fn send_readings(agent: &Agent, n: usize, t0: i64) {
    let tx = agent.sender();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        tx.send(chunk.iter().map(|&k| reading(k, t0)).collect::<Vec<_>>().into()).await.unwrap();
    }
}

/// Waits until every station's pm25 in the cloud is the last of `n` readings.
async fn wait_latest(cloud: &InProcessCloud, n: usize) {
    wait_until("the cloud to hold every station's last value", WAIT, || async {
        for s in 0..STATIONS {
            let last = (0..n).rev().find(|k| k % STATIONS == s).unwrap();
            let got = reported(&cloud.clients, &station_id(s), "pm25").await.unwrap();
            if got != Some(Kind::Number(value_of(last))) {
                return false;
            }
        }
        true
    })
    .await
    .unwrap();
}

async fn node_integer(cloud: &InProcessCloud, edge: &str, attribute: &str) -> Option<i64> {
    match reported(&cloud.clients, &node_id(edge), attribute).await.unwrap() {
        Some(Kind::Integer(v)) => Some(v),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readings_reach_the_cloud_and_the_box_reports_itself() {
    let cloud = InProcessCloud::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(setup("edge-agent", format!("http://{}", cloud.addr), dir.path(), |_| {})).unwrap();
    let t0 = now_ms() - 60_000;
    let n = 2_000;
    send_readings(&agent, n, t0).await;
    wait_latest(&cloud, n).await;

    // A report made between connecting and the first ack has no lastAckAt yet: wait for one made after it.
    wait_until("the box to report itself as connected, with its last ack", WAIT, || async {
        reported(&cloud.clients, &node_id("edge-agent"), "linkState").await.unwrap()
            == Some(Kind::Text("connected".into()))
            && node_integer(&cloud, "edge-agent", "lastAckAt").await.is_some()
    })
    .await
    .unwrap();
    let sent = node_integer(&cloud, "edge-agent", "bytesSent").await.unwrap();
    assert!(sent > 0, "bytesSent {sent}");
    assert_eq!(node_integer(&cloud, "edge-agent", "sensors").await, Some(STATIONS as i64));

    let filter = agent.filter_stats();
    assert_eq!(filter.readings.get(), n as u64);
    assert_eq!(filter.stored.get(), n as u64);
    let report = agent.shutdown(Vec::new()).await.unwrap();
    assert_eq!(report.outbox.depth_updates, 0, "a clean shutdown sends what is sealed: {report:?}");
    cloud.stop().await.unwrap();
}

/// A cloud behind a cut link and an agent with a 16 KiB outbox under `policy`, sent `n` readings.
async fn fill_while_cut_off(
    edge: &str,
    policy: WhenFull,
    n: usize,
) -> (InProcessCloud, FaultProxy, Agent, tempfile::TempDir) {
    let cloud = InProcessCloud::start().await.unwrap();
    let proxy = FaultProxy::start(cloud.addr).await.unwrap();
    proxy.set(Fault::Cut);
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(edge, format!("http://{}", proxy.addr), dir.path(), |o| {
        o.max_batch_bytes = 2_048;
        o.disk_budget_bytes = 16_384;
        o.when_full = policy;
    });
    let agent = Agent::start(setup).unwrap();
    send_readings(&agent, n, now_ms() - 60_000).await;
    (cloud, proxy, agent, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_outbox_drops_oldest_history_keeps_latest_values_and_says_so() {
    let n = 3_000;
    let (cloud, proxy, agent, _dir) = fill_while_cut_off("edge-full-drop", WhenFull::DropOldestHistory, n).await;
    let outbox = agent.outbox().clone();
    wait_until("the outbox to drop history", WAIT, || {
        let s = outbox.stats();
        async move { s.dropped_by_policy > 0 }
    })
    .await
    .unwrap();
    let s = outbox.stats();
    assert!(s.used_bytes <= s.budget_bytes, "{s:?}");
    assert_eq!(agent.filter_stats().refused_when_full.get(), 0, "this policy never refuses new readings");

    proxy.set(Fault::None);
    // Every attribute's latest value survived the drops.
    wait_latest(&cloud, n).await;
    let dropped = outbox.stats().dropped_by_policy as i64;
    wait_until("the box to report its drops", WAIT, || async {
        node_integer(&cloud, "edge-full-drop", "droppedByPolicy").await == Some(dropped)
    })
    .await
    .unwrap();
    agent.shutdown(Vec::new()).await.unwrap();
    cloud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_outbox_with_reject_new_refuses_and_counts() {
    let n = 3_000;
    let (cloud, proxy, agent, _dir) = fill_while_cut_off("edge-full-reject", WhenFull::RejectNew, n).await;
    let filter = agent.filter_stats();
    wait_until("every reading to be stored or refused", WAIT, || {
        let f = filter.clone();
        async move { f.stored.get() + f.refused_when_full.get() == n as u64 }
    })
    .await
    .unwrap();
    let refused = filter.refused_when_full.get();
    assert!(refused > 0, "the outbox filled up");
    assert_eq!(filter.readings.get(), n as u64);
    let outbox = agent.outbox().clone();
    assert!(outbox.stats().rejected_when_full >= refused);
    assert_eq!(outbox.stats().dropped_by_policy, 0, "this policy never deletes stored updates");

    proxy.set(Fault::None);
    wait_until("the box to report its refusals", WAIT, || async {
        node_integer(&cloud, "edge-full-reject", "refusedWhenFull").await.is_some_and(|v| v >= refused as i64)
    })
    .await
    .unwrap();
    agent.shutdown(Vec::new()).await.unwrap();
    cloud.stop().await.unwrap();
}
