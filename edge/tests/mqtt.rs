//! The MQTT bridge against a real Mosquitto: FIWARE-style payloads become the exact readings, garbage is
//! counted without stopping the good messages behind it, a full channel holds messages back without losing
//! them, and a broker that is late, restarted or killed is reconnected and resubscribed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{future::Future, sync::Arc, time::Duration};

use edge::{
    mqtt::{MqttBridge, MqttConfig, MqttStats},
    source::{Reading, ReadingReceiver},
};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use twin_e2e::{MosquittoBroker, mosquitto::publish};
use twin_model::{AttrName, Catalog, EntityId, TypeName, Value, now_unix_ms};
use twin_outbox::OutboxUpdate;

/// The bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(30);
/// 2024-05-01T00:00:00Z.
const T0: i64 = 1_714_521_600_000;

const MAPPINGS: &str = r#"
[[mappings]]
name = "air quality"
topic = "city/airquality/+"
entity_type = "AirQualityObserved"
entity_id = { field = "id" }
observed_at = { field = "dateObserved.value", format = "rfc3339" }
attributes = { pm25 = "pm25.value", no2 = "no2.value" }

[[mappings]]
name = "traffic counters"
topic = "/traffic-key/+/attrs"
entity_type = "TrafficFlowObserved"
entity_id = { topic_level = 2, template = "urn:ngsi-ld:TrafficFlowObserved:{}" }
observed_at = { field = "t", format = "unix_ms" }
attributes = { intensity = "i", congested = "c", laneId = "l" }

[[mappings]]
name = "noise"
topic = "city/noise/#"
entity_type = "NoiseLevelObserved"
entity_id = { topic_level = 2, template = "urn:ngsi-ld:NoiseLevelObserved:{}" }
attributes = { LAeq = "laeq" }
"#;

const AIR_ID: &str = "urn:ngsi-ld:AirQualityObserved:mqtt:1";

/// An NGSI-v2 normalized AirQualityObserved, observed at `T0` (written in China's time zone).
fn air(pm25: f64, no2: i64) -> Vec<u8> {
    format!(
        r#"{{"id": "{AIR_ID}", "type": "AirQualityObserved",
            "dateObserved": {{"type": "DateTime", "value": "2024-05-01T08:00:00+08:00"}},
            "pm25": {{"type": "Number", "value": {pm25}}}, "no2": {{"type": "Number", "value": {no2}}}}}"#
    )
    .into_bytes()
}

fn reading(entity_type: &str, id: &str, attribute: &str, value: Value, observed_at: i64) -> Reading {
    Reading {
        entity_type: TypeName::new(entity_type).unwrap(),
        update: OutboxUpdate {
            entity: EntityId::new(id).unwrap(),
            attribute: AttrName::new(attribute).unwrap(),
            value,
            observed_at,
        },
    }
}

fn air_readings(pm25: f64, no2: i64) -> Vec<Reading> {
    vec![
        reading("AirQualityObserved", AIR_ID, "no2", Value::Number(no2 as f64), T0),
        reading("AirQualityObserved", AIR_ID, "pm25", Value::Number(pm25), T0),
    ]
}

fn config(client_id: &str, port: u16) -> MqttConfig {
    let mut c: MqttConfig = toml::from_str(MAPPINGS).unwrap();
    c.port = port;
    c.client_id = client_id.into();
    c.keep_alive = Duration::from_secs(5);
    c.reconnect_min = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(500);
    c
}

struct Running {
    task: JoinHandle<()>,
    stats: Arc<MqttStats>,
    rx: ReadingReceiver,
    shutdown: CancellationToken,
}

fn spawn(config: MqttConfig, channel_capacity: usize) -> Running {
    let mapper = config.mapper(&Catalog::builtin()).unwrap();
    let (tx, rx) = mpsc::channel(channel_capacity);
    let shutdown = CancellationToken::new();
    let (task, stats) = MqttBridge::spawn(config, mapper, tx, shutdown.clone());
    Running { task, stats, rx, shutdown }
}

impl Running {
    /// Receives readings until `n` have come, failing after [`WAIT`].
    async fn readings(&mut self, n: usize) -> Vec<Reading> {
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(mut batch)) => {
                    // As the agent does once the readings are durable in its outbox.
                    if let Some(stored) = batch.on_stored.take() {
                        let _ = stored.send(());
                    }
                    got.extend(batch)
                }
                Ok(None) => panic!("the bridge closed its channel after {} of {n} readings", got.len()),
                Err(_) => panic!("{} of {n} readings within {WAIT:?}; stats {:?}; got {got:?}", got.len(), self.stats),
            }
        }
        assert_eq!(got.len(), n, "more readings than expected: {got:?}");
        got
    }

    /// Stops the bridge and waits for its task.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task).await.expect("the bridge did not stop in time").unwrap();
    }
}

/// Polls `cond` every 10 ms until it holds, failing the test after [`WAIT`].
async fn wait_until<F, Fut>(what: &str, stats: &MqttStats, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}; stats {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_subscribed(stats: &MqttStats, times: u64) {
    wait_until(&format!("subscription number {times}"), stats, || async { stats.subscriptions.get() >= times }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fiware_payloads_map_exactly_and_garbage_is_counted_without_blocking_them() {
    let broker = MosquittoBroker::start().unwrap();
    let mut bridge = spawn(config("edge-mqtt-map", broker.port()), 64);
    wait_subscribed(&bridge.stats, 1).await;

    // Good messages of each mapping.
    let traffic = format!(r#"{{"i": 840, "c": false, "l": 2, "t": {}}}"#, T0 + 1_000).into_bytes();
    let before = now_unix_ms();
    publish(
        broker.port(),
        &[
            ("city/airquality/station-1", &air(35.5, 41)),
            ("/traffic-key/loop-17/attrs", &traffic),
            ("city/noise/site-4", br#"{"laeq": 55.5}"#),
        ],
    )
    .await
    .unwrap();
    let got = bridge.readings(6).await;
    let after = now_unix_ms();
    let traffic_id = "urn:ngsi-ld:TrafficFlowObserved:loop-17";
    let mut expected = air_readings(35.5, 41);
    expected.extend([
        reading("TrafficFlowObserved", traffic_id, "congested", Value::Bool(false), T0 + 1_000),
        reading("TrafficFlowObserved", traffic_id, "intensity", Value::Number(840.0), T0 + 1_000),
        reading("TrafficFlowObserved", traffic_id, "laneId", Value::Integer(2), T0 + 1_000),
    ]);
    assert_eq!(got[..5], expected[..]);
    let noise = &got[5];
    assert_eq!(noise.update.entity.as_str(), "urn:ngsi-ld:NoiseLevelObserved:site-4");
    assert_eq!(noise.update.value, Value::Number(55.5));
    assert!(
        (before..=after).contains(&noise.update.observed_at),
        "without a time field the arrival time is used: {} not in {before}..={after}",
        noise.update.observed_at
    );
    assert_eq!((bridge.stats.messages.get(), bridge.stats.readings.get()), (3, 6));

    // Garbage interleaved with good messages: each bad one is counted, each good one still arrives.
    let partial = format!(r#"{{"i": "lots", "c": true, "t": {T0}}}"#).into_bytes();
    let all_bad = format!(r#"{{"i": -5, "t": {T0}}}"#).into_bytes();
    let bad_time = br#"{"id": "urn:ngsi-ld:AirQualityObserved:mqtt:1", "dateObserved": {"value": "yesterday"},
        "pm25": {"value": 1}}"#;
    publish(
        broker.port(),
        &[
            ("city/airquality/station-1", b"this is not json"),
            ("city/airquality/station-1", &air(36.0, 42)),
            ("city/airquality/station-1", br#"{"pm25": {"value": 1}}"#), // no id
            ("/traffic-key/loop-18/attrs", &partial),                    // one bad field, one good
            ("/traffic-key/loop-18/attrs", &all_bad),                    // its only field out of range
            ("city/noise", br#"{"laeq": 50}"#),                          // no topic level 2 for the id
            ("city/airquality/station-1", bad_time),
            ("city/airquality/station-1", b"[1, 2, 3]"),
            ("city/noise/site-5", br#"{"laeq": 60}"#),
            ("city/airquality/station-1", &air(37.0, 43)),
        ],
    )
    .await
    .unwrap();
    let got = bridge.readings(6).await;
    let mut expected = air_readings(36.0, 42);
    expected.push(reading(
        "TrafficFlowObserved",
        "urn:ngsi-ld:TrafficFlowObserved:loop-18",
        "congested",
        Value::Bool(true),
        T0,
    ));
    assert_eq!(got[..3], expected[..]);
    assert_eq!(got[3].update.entity.as_str(), "urn:ngsi-ld:NoiseLevelObserved:site-5");
    assert_eq!(got[4..], air_readings(37.0, 43)[..]);
    let stats = bridge.stats.clone();
    let stats = &*stats;
    wait_until("all 13 messages counted", stats, || async { stats.messages.get() == 13 }).await;
    assert_eq!(stats.unmappable_messages.get(), 6, "not JSON, no id, all fields bad, no level, bad time, array");
    assert_eq!(stats.bad_fields.get(), 2, "the bad intensity of the partial message, and of the all-bad one");
    assert_eq!(stats.readings.get(), 12);
    assert_eq!((stats.connects.get(), stats.connection_errors.get()), (1, 0));
    assert!(stats.is_connected());

    bridge.stop().await;
    assert!(!stats.is_connected());
    wait_for_clean_disconnect(&broker, "edge-mqtt-map").await;
}

/// Waits until Mosquitto logs that `client_id` sent DISCONNECT (`Client <id> disconnected.`; a connection
/// that just went away is logged as `closed its connection` instead).
async fn wait_for_clean_disconnect(broker: &MosquittoBroker, client_id: &str) {
    let clean = format!("Client {client_id} disconnected");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = broker.log_text();
        if log.contains(&clean) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "mosquitto did not log a clean disconnect of {client_id}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_restarted_or_killed_broker_is_reconnected_and_resubscribed() {
    // A port a broker can bind, with no broker on it yet: the bridge starts first and keeps trying.
    let port = {
        let probe = MosquittoBroker::start().unwrap();
        let port = probe.port();
        probe.stop().unwrap();
        port
    };
    let mut bridge = spawn(config("edge-mqtt-reconnect", port), 64);
    let stats = bridge.stats.clone();
    wait_until("failed attempts while the broker is down", &stats, || async { stats.connection_errors.get() >= 3 })
        .await;
    assert!(!stats.is_connected());

    let broker = MosquittoBroker::start_on(port).unwrap();
    wait_subscribed(&stats, 1).await;
    publish(port, &[("city/airquality/a", &air(1.0, 1))]).await.unwrap();
    assert_eq!(bridge.readings(2).await, air_readings(1.0, 1));

    // A clean restart: the new broker has no session for the bridge, so it must subscribe again.
    broker.stop().unwrap();
    wait_until("the bridge to notice the broker is gone", &stats, || async { !stats.is_connected() }).await;
    let mut broker = MosquittoBroker::start_on(port).unwrap();
    wait_subscribed(&stats, 2).await;
    publish(port, &[("city/airquality/a", &air(2.0, 2))]).await.unwrap();
    assert_eq!(bridge.readings(2).await, air_readings(2.0, 2));

    // A crash.
    broker.kill();
    wait_until("the bridge to notice the broker died", &stats, || async { !stats.is_connected() }).await;
    let broker = MosquittoBroker::start_on(port).unwrap();
    wait_subscribed(&stats, 3).await;
    publish(port, &[("city/airquality/a", &air(3.0, 3))]).await.unwrap();
    assert_eq!(bridge.readings(2).await, air_readings(3.0, 3));
    assert_eq!(stats.connects.get(), 3);
    assert!(stats.connection_errors.get() >= 5, "{stats:?}");
    assert_eq!(stats.unmappable_messages.get(), 0);

    bridge.stop().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_holds_messages_back_without_losing_them() {
    let broker = MosquittoBroker::start().unwrap();
    // One batch in the channel at a time, and nobody reading while the messages are published.
    let mut bridge = spawn(config("edge-mqtt-backpressure", broker.port()), 1);
    wait_subscribed(&bridge.stats, 1).await;
    const N: usize = 300;
    let payloads: Vec<(String, Vec<u8>)> =
        (0..N).map(|k| (format!("city/noise/n{k}"), format!(r#"{{"laeq": {}}}"#, k % 140).into_bytes())).collect();
    let messages: Vec<(&str, &[u8])> = payloads.iter().map(|(t, p)| (t.as_str(), p.as_slice())).collect();
    publish(broker.port(), &messages).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bridge.stats.readings.get() < N as u64, "the bridge waits for room: {:?}", bridge.stats);

    let got = bridge.readings(N).await;
    let ids: Vec<&str> = got.iter().map(|r| r.update.entity.as_str()).collect();
    let expected: Vec<String> = (0..N).map(|k| format!("urn:ngsi-ld:NoiseLevelObserved:n{k}")).collect();
    assert_eq!(ids, expected, "every message, in order");
    assert_eq!(bridge.stats.messages.get(), N as u64, "no message delivered twice either");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_counted_and_do_not_wedge_the_bridge() {
    let broker = MosquittoBroker::start().unwrap();
    let mut c = config("edge-mqtt-oversized", broker.port());
    c.max_payload_bytes = 1024;
    let mut bridge = spawn(c, 64);
    let stats = bridge.stats.clone();
    wait_subscribed(&stats, 1).await;

    // Over max_payload_bytes but readable: counted, not parsed.
    let mut big = air(4.0, 4);
    big.resize(2_000, b' ');
    publish(broker.port(), &[("city/airquality/a", &big), ("city/airquality/a", &air(5.0, 5))]).await.unwrap();
    assert_eq!(bridge.readings(2).await, air_readings(5.0, 5));
    assert_eq!(stats.unmappable_messages.get(), 1);

    // Too large for the connection to read at all (1 KiB + room for a topic): the connection breaks. In a
    // persistent session the broker would send it again on every reconnection; the bridge sheds it once
    // with a clean session and carries on.
    let mut huge = air(6.0, 6);
    huge.resize(200_000, b' ');
    publish(broker.port(), &[("city/airquality/a", &huge)]).await.unwrap();
    wait_subscribed(&stats, 2).await;
    publish(broker.port(), &[("city/airquality/a", &air(7.0, 7))]).await.unwrap();
    assert_eq!(bridge.readings(2).await, air_readings(7.0, 7));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stats.connects.get(), 2, "one reconnection, not a loop: {stats:?}");
    assert_eq!(stats.unmappable_messages.get(), 2);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_only_once_its_readings_are_stored() {
    let broker = MosquittoBroker::start().unwrap();
    let mut first = spawn(config("edge-mqtt-durable", broker.port()), 64);
    wait_subscribed(&first.stats, 1).await;
    publish(broker.port(), &[("city/airquality/a", &air(7.0, 7))]).await.unwrap();
    // The agent takes the readings but fails before storing them: it drops the notifier unfired.
    let group = tokio::time::timeout(WAIT, first.rx.recv()).await.unwrap().unwrap();
    assert_eq!(group.readings, air_readings(7.0, 7));
    drop(group);
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.stop().await;
    // Not acknowledged, so the broker delivers it again to the same persistent session.
    let mut second = spawn(config("edge-mqtt-durable", broker.port()), 64);
    assert_eq!(second.readings(2).await, air_readings(7.0, 7));
    second.stop().await;
}
