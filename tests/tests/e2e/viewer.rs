//! The viewer against a cloud holding the demonstration city: a snapshot's pixels follow the updates.

use std::process::Command;

use twin_e2e::*;
use twin_model::Catalog;
use twin_proto::pb;

/// Renders `viewer snapshot --cloud` close up on `station` and returns the colour at the picture's centre.
fn centre_colour(cloud: std::net::SocketAddr, station: &str, dir: &std::path::Path, name: &str) -> [u8; 3] {
    let out = dir.join(name);
    let url = format!("http://{cloud}");
    let camera = format!("entity:{station}");
    let args =
        ["snapshot", "--cloud", &url, "--camera", &camera, "--hide", "buildings", "--width", "240", "--height", "160"];
    let run = Command::new(binary("viewer").unwrap()).args(args).arg("--out").arg(&out).output().unwrap();
    assert!(run.status.success(), "viewer failed: {}", String::from_utf8_lossy(&run.stderr));
    png_centre(&out).expect("a readable PNG")
}

fn aqi(station: &str, value: i64, offset_ms: i64) -> pb::Update {
    update(station, "aqi", pb::Value { kind: Some(pb::value::Kind::Integer(value)) }, offset_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_shows_the_aqi_band_a_station_moves_into() {
    let city = twin_city::changsha(twin_city::DEFAULT_SEED);
    let cloud = InProcessCloud::start().await.unwrap();
    let summary = twin_client::load_entities(
        cloud.clients.channel.clone(),
        &Catalog::builtin(),
        &city.entities,
        5_000,
        |_, _| {},
    )
    .await
    .unwrap();
    assert!(summary.rejected.is_empty());
    let station = city.of_type("AirQualityObserved").next().unwrap().header.id.to_string();
    let dir = tempfile::tempdir().unwrap();

    let mut edge = EdgeStream::open(&cloud.clients, "edge-viewer-test").await.unwrap();
    let t0 = now_ms() - 10_000;
    edge.send_and_ack(batch(1, t0, vec![aqi(&station, 30, 0)])).await.unwrap();
    let [r, g, b] = centre_colour(cloud.addr, &station, dir.path(), "good.png");
    assert!(g > r + 80 && g > b + 80, "AQI 30 is the green band: {:?}", [r, g, b]);

    edge.send_and_ack(batch(2, t0, vec![aqi(&station, 180, 1_000)])).await.unwrap();
    let [r, g, b] = centre_colour(cloud.addr, &station, dir.path(), "bad.png");
    assert!(r > g + 80 && r > b + 80, "AQI 180 is the red band: {:?}", [r, g, b]);
    cloud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_mode_follows_the_cloud_and_rewrites_its_snapshots() {
    let cloud = InProcessCloud::start().await.unwrap();
    load(&cloud.clients, (0..3).map(|i| station(i, 112.95 + i as f64 * 0.01, 28.2)).collect()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", cloud.addr);
    let camera = format!("entity:{}", station_id(1));
    let mut viewer = ChildProcess::spawn_until(
        "viewer",
        {
            let mut c = Command::new(binary("viewer").unwrap());
            c.args(["headless", "--cloud", &url, "--every", "200ms", "--cameras", &camera, "--width", "160"])
                .args(["--height", "120", "--dir"])
                .arg(dir.path());
            c
        },
        "viewer: ",
        None,
    )
    .unwrap()
    .0;
    let file = dir.path().join(format!("{}.png", camera.replace(':', "_")));
    let mut edge = EdgeStream::open(&cloud.clients, "edge-headless").await.unwrap();
    edge.send_and_ack(batch(1, now_ms() - 5_000, vec![aqi(&station_id(1), 250, 0)])).await.unwrap();
    // Heavily polluted is purple (153, 0, 76).
    wait_until("the snapshot to show the new band", WAIT, || async {
        png_centre(&file).is_some_and(|[r, g, b]| r > g + 60 && b > g + 20)
    })
    .await
    .unwrap();
    assert!(viewer.terminate().await.unwrap().success(), "SIGTERM stops the viewer cleanly");
    cloud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_window_opens_on_a_display_and_closes_cleanly_on_sigterm() {
    let display = XvfbDisplay::start().unwrap();
    let mut command = Command::new(binary("viewer").unwrap());
    command.args(["window", "--offline"]).env("DISPLAY", display.display()).env_remove("WAYLAND_DISPLAY");
    // Allow for a debug build starting on a software adapter.
    let (mut window, opened) = ChildProcess::spawn_until_within(
        "viewer window",
        command,
        "viewer: window open",
        None,
        std::time::Duration::from_secs(180),
    )
    .unwrap();
    assert!(opened.contains("adapter"), "{opened}");
    assert!(window.terminate().await.unwrap().success(), "SIGTERM closes the window like its close button");
}
