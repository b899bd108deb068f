//! The real `edge` and `cloud` binaries through a fault-injecting proxy: a simulated district streams
//! through repeated cuts, stalls, resets and delays, a kill -9 of the cloud and a kill -9 of the edge; in
//! the end every update that entered the outbox is in the cloud, each delivered once, and the cloud's
//! state is the edge's last values.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::Duration,
};

use edge::uplink::{Uplink, UplinkConfig};
use tokio_util::sync::CancellationToken;
use twin_e2e::{mosquitto::publish, *};
use twin_model::EdgeId;
use twin_outbox::{Outbox, OutboxConfig, OutboxUpdate};
use twin_proto::pb;

const EDGE: &str = "edge-chaos";
const TICK_MS: i64 = 100;
/// The uplink logs every failed session at `warn`: hundreds here.
const QUIET: &[(&str, &str)] = &[("TWIN_EDGE__LOG", "error")];

/// The edge's config: 40 Furong sensors sampled every 100 ms, every reading sent (a 1 ms heartbeat), small
/// batches and fast reconnects so a 15-second run goes through many sessions.
fn write_config(dir: &Path, proxy: std::net::SocketAddr) -> std::path::PathBuf {
    let text = format!(
        r#"edge_id = "{EDGE}"
cloud = "http://{proxy}"
data_dir = "{data}"
self_report_interval = "1s"

[simulator]
district = "furong"
speed = 60
tick = "{TICK_MS}ms"
max_entities = 40

[deadband.default]
heartbeat = "1ms"

[outbox]
max_batch_updates = 200

[uplink]
seal_interval = "50ms"
max_in_flight = 4
backoff_min = "20ms"
backoff_max = "400ms"
latest_first_after = "1s"
"#,
        data = dir.join("edge").display()
    );
    let path = dir.join("edge.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn outbox_config(dir: &Path) -> OutboxConfig {
    OutboxConfig { fsync: false, ..OutboxConfig::new(dir.join("edge").join("outbox")) }
}

/// What a stopped edge left in its outbox: every sealed update, and every attribute's latest value (which
/// covers the open batch).
fn left_in_outbox(dir: &Path) -> (Vec<OutboxUpdate>, Vec<OutboxUpdate>) {
    let outbox = Outbox::open(outbox_config(dir)).unwrap();
    let sealed = outbox.sealed_after(0, usize::MAX).unwrap().into_iter().flat_map(|b| b.updates).collect();
    (sealed, outbox.latest())
}

type Key = (String, String);

/// Every history point of every attribute of every entity in the cloud.
async fn all_history(clients: &Clients) -> BTreeMap<Key, (String, BTreeMap<i64, pb::Value>)> {
    let list = clients.twin().list(pb::ListRequest { page_size: 1_000, ..Default::default() }).await.unwrap();
    let mut out = BTreeMap::new();
    for e in list.into_inner().entities {
        for a in &e.attributes {
            let req = pb::HistoryRequest {
                entity_id: e.id.clone(),
                attribute: a.name.clone(),
                from_unix_ms: 946_684_800_000,
                limit: 100_000,
                ..Default::default()
            };
            let h = clients.twin().history(req).await.unwrap().into_inner();
            assert!(!h.truncated, "{} {}: more history than one page", e.id, a.name);
            let points = h.points.into_iter().map(|p| (p.observed_at_unix_ms, p.value.unwrap())).collect();
            out.insert((e.id.clone(), a.name.clone()), (e.r#type.clone(), points));
        }
    }
    out
}

/// Drains what the edge left in its outbox straight to the cloud, as its next start would.
async fn drain(dir: &Path, cloud: std::net::SocketAddr) {
    let outbox = Outbox::open(outbox_config(dir)).unwrap();
    let shutdown = CancellationToken::new();
    let config = UplinkConfig {
        latest_first_after: Duration::ZERO,
        ..UplinkConfig::new(EdgeId::new(EDGE).unwrap(), format!("http://{cloud}"))
    };
    let (task, stats) = Uplink::spawn(config, outbox.clone(), shutdown.clone());
    wait_until("the outbox to drain", WAIT, || {
        let (s, acked) = (outbox.stats(), stats.borrow().last_acked_seq);
        async move { s.depth_updates == 0 && acked >= s.last_sealed_seq }
    })
    .await
    .unwrap();
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outages_and_kill_9_of_cloud_and_edge_lose_nothing_and_deliver_each_update_once() {
    let dir = tempfile::tempdir().unwrap();
    let cloud_dir = dir.path().join("cloud");
    let mut cloud = CloudProcess::spawn(&cloud_dir, &[]).unwrap();
    let cloud_addr = cloud.addr;
    let proxy = FaultProxy::start(cloud_addr).await.unwrap();
    let config = write_config(dir.path(), proxy.addr);
    let config_arg = config.to_str().unwrap();
    let mut edge = EdgeProcess::spawn(&["--config", config_arg], QUIET).unwrap();
    assert!(edge.started.contains("40 sensors"), "{}", edge.started);

    let chaos = Duration::from_secs(14);
    proxy.chaos(
        0xC17_7A1E,
        Duration::from_millis(300)..Duration::from_millis(900),
        Duration::from_millis(100)..Duration::from_millis(500),
        chaos,
    );
    let started = std::time::Instant::now();

    tokio::time::sleep(Duration::from_secs(4)).await;
    cloud.kill9().unwrap();
    let listen = cloud_addr.to_string();
    cloud = CloudProcess::spawn(&cloud_dir, &["--listen", &listen]).unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    edge.kill9().unwrap();
    let killed_at = now_ms();
    let (at_kill, _) = left_in_outbox(dir.path());
    edge = EdgeProcess::spawn(&["--config", config_arg], QUIET).unwrap();

    tokio::time::sleep(chaos.saturating_sub(started.elapsed()) + Duration::from_millis(500)).await;
    // The edge's last values must still be on the box when it stops: cut the link first.
    proxy.set(Fault::Cut);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let status = edge.terminate().await.unwrap();
    assert!(status.success(), "edge exit: {status}");
    let (at_stop, last_values) = left_in_outbox(dir.path());
    assert!(!last_values.is_empty(), "the cut kept the last values on the box");
    proxy.set(Fault::None);
    drain(dir.path(), cloud_addr).await;

    let clients = cloud.clients().await.unwrap();
    let history = all_history(&clients).await;
    // 1. Everything that was waiting in the outbox, at the kill and at the stop, is in the cloud's history.
    for u in at_kill.iter().chain(&at_stop).chain(&last_values) {
        let key = (u.entity.to_string(), u.attribute.to_string());
        let point = history.get(&key).and_then(|(_, points)| points.get(&u.observed_at));
        assert_eq!(point, Some(&pb::Value::from(&u.value)), "{key:?} at {}", u.observed_at);
    }
    // 2. The cloud's state is the edge's last values.
    for u in &last_values {
        let got = reported(&clients, &u.entity, &u.attribute).await.unwrap();
        assert_eq!(got, pb::Value::from(&u.value).kind, "{} {}", u.entity, u.attribute);
    }
    // 3. Nothing lost between those snapshots: every simulated attribute has a point at every tick, except
    //    readings that never reached the outbox because the edge was killed while they were in memory.
    //    (Static attributes, set once when the edge registered its sensors, have a single point.)
    let live = |t: &str, points: &BTreeMap<i64, pb::Value>| t != "EdgeNode" && points.len() > 1;
    let ticks: BTreeSet<i64> =
        history.values().filter(|(t, p)| live(t, p)).flat_map(|(_, points)| points.keys().copied()).collect();
    assert!(history.values().filter(|(t, p)| live(t, p)).count() >= 40, "every sensor has live attributes");
    assert!(ticks.len() > 50, "the simulator ran for many ticks: {}", ticks.len());
    let mut missing: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for ((id, attr), (t, points)) in &history {
        if !live(t, points) {
            continue;
        }
        for tick in ticks.iter().filter(|tick| !points.contains_key(tick)) {
            missing.entry(*tick).or_default().push(format!("{id} {attr}"));
        }
    }
    for (tick, what) in &missing {
        assert!(
            (killed_at - 10 * TICK_MS..=killed_at).contains(tick),
            "no point at tick {tick} (edge killed at {killed_at}, {} ms before) for {} attributes: {:?}",
            killed_at - tick,
            what.len(),
            &what[..what.len().min(5)]
        );
    }
    // 4. Each update was delivered once: the cloud's count of updates in this edge's applied batches
    //    equals the points in history (all of them came from this edge, one per update).
    let points: u64 = history.values().map(|(_, p)| p.len() as u64).sum();
    let welcome = EdgeStream::open(&clients, EDGE).await.unwrap().welcome;
    assert_eq!(welcome.updates_delivered, points, "updates delivered vs. points in history");

    let p = proxy.stats();
    eprintln!("proxy {p:?}; {} fault switches; {} ticks; {points} points", proxy.switches().len(), ticks.len());
    assert!(proxy.switches().len() >= 10, "the link failed repeatedly");
    assert!(cloud.terminate().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mqtt_payloads_reach_the_cloud_and_malformed_ones_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut cloud = CloudProcess::spawn(&dir.path().join("cloud"), &[]).unwrap();
    let clients = cloud.clients().await.unwrap();
    load(&clients, (0..5).map(|i| station(i, 112.97 + i as f64 * 0.001, 28.19)).collect()).await.unwrap();
    let broker = MosquittoBroker::start().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            r#"edge_id = "edge-mqtt"
cloud = "http://{cloud}"
data_dir = "{data}"
simulate = false
self_report_interval = "200ms"

[mqtt]
port = {port}
client_id = "edge-mqtt-test"

[[mqtt.mappings]]
topic = "city/air/+"
entity_type = "AirQualityObserved"
entity_id = {{ field = "id" }}
observed_at = {{ field = "t", format = "unix_ms" }}
attributes = {{ pm25 = "pm25.value", no2 = "no2.value" }}
"#,
            cloud = cloud.addr,
            data = dir.path().join("edge").display(),
            port = broker.port()
        ),
    )
    .unwrap();
    let mut edge = EdgeProcess::spawn(&["--config", config.to_str().unwrap()], &[]).unwrap();
    assert!(edge.started.contains("+ mqtt"), "{}", edge.started);

    let t = now_ms() - 1_000;
    let good = |i: usize, v: f64| {
        format!(
            r#"{{"id":"{}","t":{},"pm25":{{"value":{v}}},"no2":{{"value":{}}}}}"#,
            station_id(i),
            t + i as i64,
            v + 1.0
        )
    };
    let (g0, g1, g2, g3, g4) = (good(0, 10.5), good(1, 11.5), good(2, 12.5), good(3, 13.5), good(4, 14.5));
    let messages: Vec<(&str, &[u8])> = vec![
        ("city/air/0", g0.as_bytes()),
        ("city/air/x", b"this is not json"),
        ("city/air/1", g1.as_bytes()),
        ("city/air/x", br#"{"t": 1, "pm25": {"value": 3}}"#),
        ("city/air/2", g2.as_bytes()),
        ("city/air/x", br#"[1, 2, 3]"#),
        ("city/air/3", g3.as_bytes()),
        ("city/air/4", g4.as_bytes()),
    ];
    // The bridge may still be subscribing: publish until the first message lands.
    wait_until("the bridge to subscribe", WAIT, || async {
        publish(broker.port(), &messages[..1]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        reported(&clients, &station_id(0), "pm25").await.unwrap().is_some()
    })
    .await
    .unwrap();
    publish(broker.port(), &messages[1..]).await.unwrap();
    wait_until("every mapped payload in the cloud", WAIT, || async {
        for i in 0..5 {
            let want = Some(pb::value::Kind::Number(10.5 + i as f64));
            if reported(&clients, &station_id(i), "pm25").await.unwrap() != want {
                return false;
            }
        }
        true
    })
    .await
    .unwrap();
    assert_eq!(reported(&clients, &station_id(4), "no2").await.unwrap(), Some(pb::value::Kind::Number(15.5)));
    let node = "urn:ngsi-ld:EdgeNode:edge-mqtt";
    wait_until("the box to report the malformed payloads", WAIT, || async {
        reported(&clients, node, "unmappableMessages").await.unwrap() == Some(pb::value::Kind::Integer(3))
    })
    .await
    .unwrap();
    assert!(edge.terminate().await.unwrap().success(), "the agent survived the malformed payloads");
    assert!(cloud.terminate().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_s_trace_context_continues_in_the_cloud() {
    let mut receiver = twin_telemetry::testing::OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let otlp = receiver.endpoint();
    let mut cloud =
        CloudProcess::spawn(&dir.path().join("cloud"), &["--otlp-endpoint", &otlp, "--log", "info"]).unwrap();
    let url = format!("http://{}", cloud.addr);
    let data = dir.path().join("edge");
    let args = ["--cloud", &url, "--data-dir", data.to_str().unwrap(), "--otlp-endpoint", &otlp, "--log", "info"];
    let env = [("TWIN_EDGE__SIMULATOR__MAX_ENTITIES", "5"), ("TWIN_EDGE__SIMULATOR__TICK", "100ms")];
    let mut edge = EdgeProcess::spawn(&args, &env).unwrap();
    let clients = cloud.clients().await.unwrap();
    wait_until("the edge's first report", WAIT, || async {
        reported(&clients, "urn:ngsi-ld:EdgeNode:edge-furong", "linkState").await.unwrap().is_some()
    })
    .await
    .unwrap();
    // Shutdown flushes both exporters.
    assert!(edge.terminate().await.unwrap().success());
    assert!(cloud.terminate().await.unwrap().success());
    let spans = receiver.spans(Duration::from_secs(2), WAIT).await;
    let sessions: Vec<_> = spans
        .iter()
        .filter(|s| s.span.name == "uplink_session" && s.service_name.as_deref() == Some("twin-edge"))
        .collect();
    assert!(!sessions.is_empty(), "the edge exported its uplink session span");
    let continued = spans.iter().filter(|s| s.span.name == "ingest" && s.service_name.as_deref() == Some("twin-cloud"));
    let linked = continued
        .filter(|i| {
            sessions.iter().any(|s| s.span.trace_id == i.span.trace_id && s.span.span_id == i.span.parent_span_id)
        })
        .count();
    assert!(linked >= 1, "the cloud's ingest span is a child of the edge's session span");
}

#[tokio::test]
async fn dead_letters_are_listed_with_the_cloud_s_reason() {
    let dir = tempfile::tempdir().unwrap();
    let update = OutboxUpdate {
        entity: twin_model::EntityId::new(&station_id(1)).unwrap(),
        attribute: twin_model::AttrName::new("pm25").unwrap(),
        value: twin_model::Value::Number(-5.0),
        observed_at: now_ms(),
    };
    {
        let outbox = Outbox::open(outbox_config(dir.path())).unwrap();
        outbox.append(std::slice::from_ref(&update)).unwrap();
        let seq = outbox.seal().unwrap().unwrap();
        let reason = "AirQualityObserved.pm25 = -5 is below its minimum 0".to_owned();
        outbox.dead_letter(seq, vec![(update, reason)]).unwrap();
        outbox.ack(seq).unwrap();
    }
    let data = dir.path().join("edge");
    let out = std::process::Command::new(binary("edge").unwrap())
        .args(["--data-dir", data.to_str().unwrap(), "--dead-letters"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&station_id(1)) && stdout.contains("below its minimum 0"), "{stdout}");
    assert!(stdout.ends_with("1 dead letters\n"), "{stdout}");
}
