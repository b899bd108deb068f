//! Following a real cloud: changes arrive, a cut link shows as disconnected, and the watch resumes after
//! the last revision so a change made during the outage is not missed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::sync::mpsc;
use twin_e2e::{EdgeStream, Fault, FaultProxy, InProcessCloud, WAIT, batch, load, now_ms, station, station_id, update};
use twin_proto::pb;
use viewer::{
    client,
    live::{LiveEvent, LiveState, follow},
    scene::{Scene, srgb},
};

fn aqi(i: usize, value: i64, offset: i64) -> pb::Update {
    update(&station_id(i), "aqi", pb::Value { kind: Some(pb::value::Kind::Integer(value)) }, offset)
}

async fn next(events: &mut mpsc::Receiver<LiveEvent>) -> LiveEvent {
    tokio::time::timeout(WAIT, events.recv()).await.expect("no live event in time").expect("follower stopped")
}

/// Waits for changes and applies them until `station`'s glyph has `color`.
async fn until_colour(
    events: &mut mpsc::Receiver<LiveEvent>,
    live: &mut LiveState,
    scene: &mut Scene,
    station: usize,
    color: [f32; 4],
) {
    let index = scene.glyph_index[&station_id(station)];
    while scene.glyphs[index].color != color {
        if let LiveEvent::Changes(r) = next(events).await {
            live.apply(scene, &r);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_changes_arrive_and_the_watch_resumes_after_an_outage() {
    let cloud = InProcessCloud::start().await.unwrap();
    load(&cloud.clients, (0..3).map(|i| station(i, 112.9 + i as f64 * 0.01, 28.2)).collect()).await.unwrap();
    let proxy = FaultProxy::start(cloud.addr).await.unwrap();
    let url = format!("http://{}", proxy.addr);
    let (entities, revision) = client::list_all(client::connect(&url).await.unwrap(), |_| {}).await.unwrap();
    let mut scene = Scene::build(&entities);
    let mut live = LiveState::new(&entities, &scene, revision);
    let (tx, mut events) = mpsc::channel(64);
    let follower = tokio::spawn(follow(url, revision, tx));
    assert!(matches!(next(&mut events).await, LiveEvent::Connected));

    let mut edge = EdgeStream::open(&cloud.clients, "edge-live").await.unwrap();
    let t0 = now_ms() - 60_000;
    edge.send_and_ack(batch(1, t0, vec![aqi(1, 180, 0)])).await.unwrap();
    until_colour(&mut events, &mut live, &mut scene, 1, srgb(255, 0, 0)).await;

    // The link drops; a change happens meanwhile; the watch resumes after the last revision it saw.
    proxy.set(Fault::Reset);
    loop {
        if let LiveEvent::Disconnected(_) = next(&mut events).await {
            break;
        }
    }
    edge.send_and_ack(batch(2, t0, vec![aqi(2, 30, 1)])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(Fault::None);
    until_colour(&mut events, &mut live, &mut scene, 2, srgb(0, 228, 0)).await;
    assert!(live.revision >= revision + 2);

    drop(events);
    tokio::time::timeout(WAIT, follower).await.expect("the follower stops when the viewer goes").unwrap();
    cloud.stop().await.unwrap();
}
