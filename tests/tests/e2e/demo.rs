//! The whole system as real processes: a cloud, two edge agents simulating their districts and a headless
//! viewer; and `citytwin`, the one command that runs the demonstration, stopped and run again.

use std::{path::Path, process::Command, time::Duration};

use twin_e2e::*;
use twin_proto::pb::{self, value::Kind};

/// The first air-quality station of `district`, once the edge registered it.
async fn station_of(clients: &Clients, district: &str) -> Option<String> {
    let prefix = format!("urn:ngsi-ld:AirQualityObserved:changsha:{district}:");
    let filter = pb::Filter { types: vec!["AirQualityObserved".into()], id_prefix: prefix, ..Default::default() };
    let list = clients
        .twin()
        .list(pb::ListRequest { filter: Some(filter), page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    list.entities.first().map(|e| e.id.clone())
}

/// The station's AQI and when it was observed, once an edge has sent one.
async fn aqi(clients: &Clients, id: &str) -> Option<(i64, i64)> {
    match reported_at(clients, id, "aqi").await.unwrap()? {
        (Kind::Integer(v), at) => Some((v, at)),
        other => panic!("aqi of {id} is not an integer: {other:?}"),
    }
}

/// The AQI band whose colour is nearest in hue to `pixel` (lighting scales a colour, it keeps its hue).
fn band_of(pixel: [u8; 3]) -> &'static str {
    let unit = |(r, g, b): (f64, f64, f64)| {
        let n = (r * r + g * g + b * b).sqrt().max(1.0);
        (r / n, g / n, b / n)
    };
    let p = unit((f64::from(pixel[0]), f64::from(pixel[1]), f64::from(pixel[2])));
    viewer::style::AQI_BANDS
        .iter()
        .map(|(_, label, (r, g, b))| {
            let c = unit((f64::from(*r), f64::from(*g), f64::from(*b)));
            (p.0 * c.0 + p.1 * c.1 + p.2 * c.2, *label)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, label)| label)
        .unwrap_or("none")
}

/// The band of an AQI value.
fn band(aqi: i64) -> &'static str {
    viewer::style::AQI_BANDS.iter().find(|(upper, _, _)| aqi <= *upper).map(|(_, l, _)| *l).unwrap_or("none")
}

fn edge(cloud: &CloudProcess, district: &str, dir: &Path) -> EdgeProcess {
    let url = format!("http://{}", cloud.addr);
    let args = ["--cloud", &url, "--district", district, "--speed", "600", "--data-dir", dir.to_str().unwrap()];
    EdgeProcess::spawn(&args, &[SMALL_BOX]).unwrap()
}

/// Each edge simulates 500 of its district's sensors (every air-quality station among them): enough to
/// show the whole path, light enough for debug builds on two cores.
const SMALL_BOX: (&str, &str) = ("TWIN_EDGE__SIMULATOR__MAX_ENTITIES", "500");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_two_edges_and_a_viewer_as_processes_show_the_updates_and_survive_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let [cloud_dir, furong_dir, yuelu_dir, snapshots] =
        ["cloud", "edge-furong", "edge-yuelu", "snapshots"].map(|d| root.path().join(d));
    let started_ms = now_ms();
    let mut cloud = CloudProcess::spawn(&cloud_dir, &[]).unwrap();
    let clients = cloud.clients().await.unwrap();
    let mut furong = edge(&cloud, "furong", &furong_dir);
    let mut yuelu = edge(&cloud, "yuelu", &yuelu_dir);

    // Each edge registers its district's sensors and streams their simulated readings.
    let mut stations = Vec::new();
    for district in ["furong", "yuelu"] {
        wait_until(&format!("{district}'s sensors to be registered"), WAIT, || async {
            station_of(&clients, district).await.is_some()
        })
        .await
        .unwrap();
        stations.push(station_of(&clients, district).await.unwrap());
    }
    for s in &stations {
        wait_until(&format!("an AQI from the edge for {s}"), WAIT, || async {
            aqi(&clients, s).await.is_some_and(|(_, at)| at >= started_ms - 1_000)
        })
        .await
        .unwrap();
    }

    let url = format!("http://{}", cloud.addr);
    let cameras = stations.iter().map(|s| format!("entity:{s}")).collect::<Vec<_>>().join(",");
    let mut command = Command::new(binary("viewer").unwrap());
    command
        .args(["headless", "--cloud", &url, "--every", "300ms", "--cameras", &cameras])
        .args(["--width", "160", "--height", "120", "--dir"])
        .arg(&snapshots);
    let (mut viewer, _) = ChildProcess::spawn_until("viewer", command, "viewer: ", None).unwrap();

    // Stopped edges freeze the state; the viewer must then show each station in its final band.
    assert!(furong.terminate().await.unwrap().success(), "SIGTERM stops the furong edge cleanly");
    assert!(yuelu.terminate().await.unwrap().success(), "SIGTERM stops the yuelu edge cleanly");
    let mut last = Vec::new();
    for s in &stations {
        let (value, at) = aqi(&clients, s).await.unwrap();
        assert!(at >= started_ms - 1_000, "{s}'s AQI came from this run's edge");
        let file = snapshots.join(format!("entity_{}.png", s.replace(':', "_")));
        let want = band(value);
        wait_until(&format!("the snapshot of {s} to show AQI {value} ({want})"), WAIT, || async {
            png_centre(&file).is_some_and(|pixel| band_of(pixel) == want)
        })
        .await
        .unwrap();
        last.push((s.clone(), value, at));
    }
    let revision = clients.twin().get(pb::GetRequest { id: stations[0].clone(), field_mask: None }).await.unwrap();
    let revision = revision.into_inner().revision;
    assert!(viewer.terminate().await.unwrap().success(), "SIGTERM stops the viewer cleanly");
    assert!(cloud.terminate().await.unwrap().success(), "SIGTERM stops the cloud cleanly");

    // The state is still there after a restart, and the edges carry on against it.
    let cloud = CloudProcess::spawn(&cloud_dir, &[]).unwrap();
    let clients = cloud.clients().await.unwrap();
    let mut before = Vec::new();
    for (s, value, at) in &last {
        assert_eq!(aqi(&clients, s).await, Some((*value, *at)), "{s} survived the restart");
        before.push((s, newest_observation(&clients, s).await.unwrap().unwrap()));
    }
    let entity = clients.twin().get(pb::GetRequest { id: stations[0].clone(), field_mask: None }).await.unwrap();
    assert_eq!(entity.into_inner().revision, revision);
    let mut furong = edge(&cloud, "furong", &furong_dir);
    let mut yuelu = edge(&cloud, "yuelu", &yuelu_dir);
    for (s, stored) in before {
        wait_until(&format!("a new reading of {s} after the restart"), WAIT, || async {
            newest_observation(&clients, s).await.unwrap().is_some_and(|now| now > stored)
        })
        .await
        .unwrap();
    }
    assert!(furong.terminate().await.unwrap().success());
    assert!(yuelu.terminate().await.unwrap().success());
    let mut cloud = cloud;
    assert!(cloud.terminate().await.unwrap().success());
}

/// How long `citytwin` may take to be running in a debug build: it loads the whole city and the edges and the
/// viewer each build it too.
const DEMO_READY: Duration = Duration::from_secs(300);

/// Starts `citytwin` on `data` with two districts and the viewer in `auto` mode: headless snapshots with no
/// display, the window on `display`. Returns it, the cloud's address and the rest of its running line.
fn citytwin(
    data: &Path,
    display: Option<&XvfbDisplay>,
) -> (ChildProcess, std::net::SocketAddr, String, std::sync::mpsc::Receiver<String>) {
    let mut command = Command::new(binary("citytwin").unwrap());
    command
        .args(["--listen", "127.0.0.1:0", "--districts", "furong,yuelu", "--speed", "600", "--viewer", "auto"])
        .args(["--every", "1s", "--data-dir"])
        .arg(data)
        .env_remove("WAYLAND_DISPLAY")
        // The edges inherit it.
        .env(SMALL_BOX.0, SMALL_BOX.1);
    match display {
        Some(x) => command.env("DISPLAY", x.display()),
        None => command.env_remove("DISPLAY"),
    };
    let (tx, lines) = std::sync::mpsc::channel();
    let (process, running) =
        ChildProcess::spawn_until_within("citytwin", command, "citytwin running: ", Some(tx), DEMO_READY).unwrap();
    let addr = running
        .strip_prefix("cloud ")
        .and_then(|r| r.split(',').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no cloud address in {running:?}"));
    (process, addr, running, lines)
}

/// Stops `citytwin` with SIGTERM and returns its `citytwin stopped:` line.
async fn stop(mut demo: ChildProcess, lines: &std::sync::mpsc::Receiver<String>) -> String {
    assert!(demo.terminate().await.unwrap().success(), "citytwin exits 0 after SIGTERM");
    lines.try_iter().find_map(|l| l.strip_prefix("citytwin stopped: ").map(str::to_owned)).expect("a stopped line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citytwin_runs_the_demonstration_and_a_second_run_resumes() {
    let data = tempfile::tempdir().unwrap();
    let (demo, addr, running, lines) = citytwin(data.path(), None);
    assert!(running.contains("2 edges") && running.contains("viewer Headless"), "no display: snapshots; {running}");
    let clients = Clients { channel: connect(addr).await.unwrap() };
    let city = twin_city::changsha(twin_city::DEFAULT_SEED);
    let marker = city.of_type("Building").last().unwrap().header.id.to_string();
    assert!(reported_at(&clients, &marker, "height").await.unwrap().is_some(), "the city was loaded");

    let stations: Vec<String> = ["furong", "yuelu"]
        .iter()
        .map(|d| {
            let prefix = format!("urn:ngsi-ld:AirQualityObserved:changsha:{d}:");
            city.of_type("AirQualityObserved").find(|e| e.header.id.as_str().starts_with(&prefix)).unwrap()
        })
        .map(|e| e.header.id.to_string())
        .collect();
    for s in &stations {
        wait_until(&format!("the edge's AQI for {s}"), WAIT, || async { aqi(&clients, s).await.is_some() })
            .await
            .unwrap();
    }
    let snapshots = data.path().join("snapshots");
    for camera in ["city", "cbd"] {
        let file = snapshots.join(format!("{camera}.png"));
        wait_until(&format!("{}", file.display()), WAIT, || async { png_centre(&file).is_some() }).await.unwrap();
    }
    let seen = aqi(&clients, &stations[0]).await.unwrap();
    let stopped = stop(demo, &lines).await;
    for part in ["viewer exit 0", "edge-furong exit 0", "edge-yuelu exit 0", "cloud exit 0"] {
        assert!(stopped.contains(part), "{part} in {stopped:?}");
    }

    // The second run finds the city and the readings of the first; with a display, the viewer is a window.
    let display = XvfbDisplay::start().unwrap();
    let (demo, addr, running, lines) = citytwin(data.path(), Some(&display));
    assert!(running.contains("already loaded") && running.contains("viewer Window"), "{running}");
    let clients = Clients { channel: connect(addr).await.unwrap() };
    let history = clients
        .twin()
        .history(pb::HistoryRequest {
            entity_id: stations[0].clone(),
            attribute: "aqi".into(),
            from_unix_ms: seen.1,
            to_unix_ms: seen.1 + 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        history.points.iter().any(|p| p.observed_at_unix_ms == seen.1),
        "the AQI seen in the first run is in the history of the second: {history:?}"
    );
    let resumed = newest_observation(&clients, &stations[0]).await.unwrap().unwrap();
    assert!(resumed >= seen.1, "the readings of the first run are there");
    wait_until("the edges to carry on", WAIT, || async {
        newest_observation(&clients, &stations[0]).await.unwrap().is_some_and(|t| t > resumed)
    })
    .await
    .unwrap();
    let carried = newest_observation(&clients, &stations[0]).await.unwrap().unwrap();
    let stopped = stop(demo, &lines).await;
    assert!(stopped.contains("viewer exit 0"), "the window closes cleanly on SIGTERM: {stopped}");
    assert!(!stopped.contains("killed") && stopped.matches("exit 0").count() == 4, "{stopped}");
    drop(display);

    // When citytwin itself dies without stopping its parts (kill -9), they stop by themselves, and the next run
    // finds their data folders free and the state there.
    let (mut demo, _, _, _lines) = citytwin(data.path(), None);
    let parts = running_children(demo.pid());
    assert_eq!(parts.len(), 4, "the cloud, two edges and the viewer run: {parts:?}");
    demo.kill9().unwrap();
    wait_until("every part to stop after citytwin was killed", WAIT, || async {
        parts.iter().all(|&p| !is_running(p))
    })
    .await
    .unwrap();
    let mut cloud = CloudProcess::spawn(&data.path().join("cloud"), &[]).unwrap();
    let clients = cloud.clients().await.unwrap();
    let stored = newest_observation(&clients, &stations[0]).await.unwrap();
    assert!(stored.is_some_and(|t| t >= carried), "the state of the runs is there: {stored:?} against {carried}");
    assert!(cloud.terminate().await.unwrap().success());
}
