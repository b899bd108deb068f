//! The uplink against an in-process cloud: a healthy link, a link with outages, and rejected updates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use edge::uplink::{Uplink, UplinkConfig, UplinkStats};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use twin_e2e::{FaultProxy, InProcessCloud, load, now_ms, reported_number, station, station_id, wait_until};
use twin_model::{AttrName, EdgeId, EntityId, Value};
use twin_outbox::{Outbox, OutboxConfig, OutboxError, OutboxUpdate};
use twin_proto::pb;

const STATIONS: usize = 20;
/// The bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(60);

fn open_outbox(dir: &Path) -> Outbox {
    let mut config = OutboxConfig::new(dir.join("outbox"));
    config.max_batch_updates = 100;
    config.fsync = false;
    Outbox::open(config).unwrap()
}

/// Update `k`: station `k % STATIONS`, pm25 = a value derived from `k`, observed at `t0 + k` ms.
fn pm25_update(k: usize, t0: i64) -> OutboxUpdate {
    OutboxUpdate {
        entity: EntityId::new(&station_id(k % STATIONS)).unwrap(),
        attribute: AttrName::new("pm25").unwrap(),
        value: Value::Number(value_of(k)),
        observed_at: t0 + k as i64,
    }
}

fn value_of(k: usize) -> f64 {
    (k % 900) as f64 + 0.5
}

/// Latest-first delivery is off here: these tests count revisions, which a snapshot would change.
fn config(edge: &str, addr: std::net::SocketAddr) -> UplinkConfig {
    UplinkConfig {
        seal_interval: Duration::from_millis(100),
        max_in_flight: 8,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(500),
        latest_first_after: Duration::ZERO,
        ..UplinkConfig::new(EdgeId::new(edge).unwrap(), format!("http://{addr}"))
    }
}

async fn load_stations(cloud: &InProcessCloud) {
    let entities = (0..STATIONS).map(|i| station(i, 112.9 + i as f64 * 0.001, 28.2)).collect();
    load(&cloud.clients, entities).await.unwrap();
}

/// Waits until the outbox is empty and the uplink has acknowledged its last sealed batch.
async fn wait_all_acked(outbox: &Outbox, stats: &watch::Receiver<UplinkStats>) {
    wait_until("every update acknowledged", WAIT, || {
        let s = outbox.stats();
        let acked = stats.borrow().last_acked_seq;
        async move { s.depth_updates == 0 && s.last_sealed_seq > 0 && acked >= s.last_sealed_seq }
    })
    .await
    .unwrap();
}

async fn stop(shutdown: CancellationToken, task: JoinHandle<Result<(), OutboxError>>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("uplink did not stop in time").unwrap().unwrap();
}

/// Every station's latest pm25 in the cloud is the last value appended for it (of `n` updates).
async fn check_latest(cloud: &InProcessCloud, n: usize, t0: i64) {
    for s in 0..STATIONS {
        let last = (0..n).rev().find(|k| k % STATIONS == s).unwrap();
        let got = reported_number(&cloud.clients, &station_id(s), "pm25").await.unwrap();
        assert_eq!(got, Some((value_of(last), t0 + last as i64)), "station {s}");
    }
}

async fn revision(cloud: &InProcessCloud) -> u64 {
    let list = cloud.clients.twin().list(pb::ListRequest { page_size: 1, ..Default::default() }).await.unwrap();
    list.into_inner().revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthy_link_delivers_everything_and_empties_the_outbox() {
    let cloud = InProcessCloud::start().await.unwrap();
    load_stations(&cloud).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let t0 = now_ms() - 3_600_000;
    let n = 2_000;
    let updates: Vec<_> = (0..n).map(|k| pm25_update(k, t0)).collect();
    outbox.append(&updates).unwrap();

    let shutdown = CancellationToken::new();
    let (task, stats) = Uplink::spawn(config("edge-healthy", cloud.addr), outbox.clone(), shutdown.clone());
    wait_all_acked(&outbox, &stats).await;
    check_latest(&cloud, n, t0).await;
    assert_eq!(outbox.stats().depth_updates, 0);
    assert_eq!(revision(&cloud).await, (STATIONS + n) as u64, "each update applied exactly once");
    let s = stats.borrow().clone();
    assert!(s.connected);
    assert_eq!(s.dead_lettered, 0);
    assert!(s.batches_acked >= 20, "2,000 updates in batches of at most 100: {s:?}");
    stop(shutdown, task).await;
    assert!(!stats.borrow().connected);
    cloud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outages_lose_nothing_and_apply_each_update_once() {
    let cloud = InProcessCloud::start().await.unwrap();
    load_stations(&cloud).await;
    let proxy = FaultProxy::start(cloud.addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let t0 = now_ms() - 3_600_000;
    let n = 5_000;

    let shutdown = CancellationToken::new();
    let (task, stats) = Uplink::spawn(config("edge-chaos", proxy.addr), outbox.clone(), shutdown.clone());
    let chaos_for = Duration::from_secs(4);
    let chaos_started = Instant::now();
    proxy.chaos(
        0x5eed_u64,
        Duration::from_millis(100)..Duration::from_millis(300),
        Duration::from_millis(50)..Duration::from_millis(200),
        chaos_for,
    );
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let updates: Vec<_> = chunk.iter().map(|&k| pm25_update(k, t0)).collect();
        let ob = outbox.clone();
        tokio::task::spawn_blocking(move || ob.append(&updates)).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    tokio::time::sleep(chaos_for.saturating_sub(chaos_started.elapsed()) + Duration::from_millis(100)).await;

    wait_all_acked(&outbox, &stats).await;
    assert_eq!(revision(&cloud).await, (STATIONS + n) as u64, "each update applied exactly once");
    check_latest(&cloud, n, t0).await;
    let s = stats.borrow().clone();
    let p = proxy.stats();
    eprintln!("uplink {s:?}; proxy {p:?}; switches {:?}", proxy.switches().len());
    assert!(s.reconnects > 0, "the chaos schedule cut the link at least once: {s:?}");
    assert_eq!(s.dead_lettered, 0);
    stop(shutdown, task).await;
    cloud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_updates_become_dead_letters_and_do_not_block() {
    let cloud = InProcessCloud::start().await.unwrap();
    load_stations(&cloud).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let t0 = now_ms() - 3_600_000;
    let bad = OutboxUpdate {
        entity: EntityId::new(&station_id(3)).unwrap(),
        attribute: AttrName::new("pm25").unwrap(),
        value: Value::Number(-5.0),
        observed_at: t0 - 1,
    };
    outbox.append(std::slice::from_ref(&bad)).unwrap();
    let n = 200;
    let updates: Vec<_> = (0..n).map(|k| pm25_update(k, t0)).collect();
    outbox.append(&updates[..100]).unwrap();

    let shutdown = CancellationToken::new();
    let (task, stats) = Uplink::spawn(config("edge-dead", cloud.addr), outbox.clone(), shutdown.clone());
    wait_all_acked(&outbox, &stats).await;
    // Later valid updates still arrive, after the rejected one was set aside.
    outbox.append(&updates[100..]).unwrap();
    wait_all_acked(&outbox, &stats).await;
    check_latest(&cloud, n, t0).await;

    let dead = outbox.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].update, bad);
    assert!(dead[0].reason.contains("pm25"), "the cloud's reason names the attribute: {}", dead[0].reason);
    assert_eq!(stats.borrow().dead_lettered, 1);
    assert_eq!(outbox.stats().dead_letters, 1);
    assert_eq!(revision(&cloud).await, (STATIONS + n) as u64, "the rejected update was not applied");
    stop(shutdown, task).await;
    cloud.stop().await.unwrap();
}

/// Every point of `station`'s pm25 history, oldest first.
async fn history(cloud: &InProcessCloud, station: usize, t0: i64) -> Vec<(i64, f64)> {
    let req = pb::HistoryRequest {
        entity_id: station_id(station),
        attribute: "pm25".into(),
        from_unix_ms: t0 - 1,
        limit: 100_000,
        ..Default::default()
    };
    let resp = cloud.clients.twin().history(req).await.unwrap().into_inner();
    resp.points
        .into_iter()
        .map(|p| match p.value.and_then(|v| v.kind) {
            Some(pb::value::Kind::Number(v)) => (p.observed_at_unix_ms, v),
            other => panic!("unexpected history value {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_an_outage_latest_values_arrive_first_and_history_follows() {
    let cloud = InProcessCloud::start().await.unwrap();
    load_stations(&cloud).await;
    let proxy = FaultProxy::start(cloud.addr).await.unwrap();
    proxy.set(twin_e2e::Fault::Cut);
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let t0 = now_ms() - 3_600_000;
    let n = 3_000;
    // The outage: 30 sealed batches pile up while the link is down.
    let shutdown = CancellationToken::new();
    let config = UplinkConfig { latest_first_after: Duration::from_secs(1), ..config("edge-latest", proxy.addr) };
    let (task, stats) = Uplink::spawn(config, outbox.clone(), shutdown.clone());
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let updates: Vec<_> = chunk.iter().map(|&k| pm25_update(k, t0)).collect();
        outbox.append(&updates).unwrap();
    }
    outbox.seal().unwrap();
    assert!(outbox.stats().sealed_batches >= 30);
    proxy.set(twin_e2e::Fault::None);
    wait_all_acked(&outbox, &stats).await;

    let s = stats.borrow().clone();
    assert_eq!((s.latest_first_snapshots, s.latest_first_updates), (1, STATIONS as u64), "{s:?}");
    // Only the snapshot moved the latest state: each station's last value, once; the backlog after it was
    // older (history only) or a repeat of the snapshot.
    assert_eq!(revision(&cloud).await, 2 * STATIONS as u64);
    check_latest(&cloud, n, t0).await;
    // And the backlog is all in history, each observation once.
    for st in 0..STATIONS {
        let want: Vec<(i64, f64)> =
            (0..n).filter(|k| k % STATIONS == st).map(|k| (t0 + k as i64, value_of(k))).collect();
        assert_eq!(history(&cloud, st, t0).await, want, "station {st}");
    }
    assert!(s.bytes_sent > 0 && s.updates_sent >= n as u64 && s.last_ack_at_ms.is_some(), "{s:?}");
    stop(shutdown, task).await;
    cloud.stop().await.unwrap();
}

/// Regression (issue 6): with nothing in flight, a batch the outbox sealed because it was full waited for the
/// uplink's next seal tick (200 ms by default, for nothing: it was already sealed). It goes out as soon as it
/// is sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_batch_is_sent_as_soon_as_it_is_sealed_not_at_the_next_tick() {
    let cloud = InProcessCloud::start().await.unwrap();
    load_stations(&cloud).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let shutdown = CancellationToken::new();
    // The seal timer ticks once as the session starts, then not for an hour.
    let config = UplinkConfig { seal_interval: Duration::from_secs(3_600), ..config("edge-prompt", cloud.addr) };
    let (task, stats) = Uplink::spawn(config, outbox.clone(), shutdown.clone());
    wait_until("connected", WAIT, || {
        let connected = stats.borrow().connected;
        async move { connected }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = now_ms() - 60_000;
    for round in 0..3 {
        let updates: Vec<_> = (round * 100..(round + 1) * 100).map(|k| pm25_update(k, t0)).collect();
        let ob = outbox.clone();
        let sealed = tokio::task::spawn_blocking(move || ob.append(&updates)).await.unwrap().unwrap().sealed;
        assert_eq!(sealed.len(), 1, "a batch of 100 updates is sealed by the append that fills it");
        let seq = sealed[0];
        wait_until("the full batch acknowledged", Duration::from_secs(10), || {
            let acked = stats.borrow().last_acked_seq;
            async move { acked >= seq }
        })
        .await
        .unwrap();
    }
    check_latest(&cloud, 300, t0).await;
    stop(shutdown, task).await;
    cloud.stop().await.unwrap();
}
