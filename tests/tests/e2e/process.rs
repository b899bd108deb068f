//! The real `cloud` binary: crash recovery after kill -9, clean SIGTERM, config errors.

use std::{process::Command, time::Duration};

use tokio_stream::wrappers::ReceiverStream;
use twin_e2e::*;
use twin_proto::pb;
use twin_telemetry::testing::OtlpReceiver;

const STATIONS: usize = 50;
const UPDATES_PER_BATCH: usize = 200;

/// Batch `seq`: every station gets pm25 = seq (mod 1000) observed at base + seq ms, plus more updates
/// of the same stations at later offsets so each batch carries `UPDATES_PER_BATCH` changes.
fn numbered_batch(seq: u64, base: i64) -> pb::Batch {
    let updates = (0..UPDATES_PER_BATCH)
        .map(|k| {
            let station = k % STATIONS;
            let round = (k / STATIONS) as i64;
            let value = ((seq * 10 + round as u64) % 1000) as f64;
            update(&station_id(station), "pm25", number(value), seq as i64 * 10 + round)
        })
        .collect();
    batch(seq, base, updates)
}

#[tokio::test]
async fn kill_9_loses_no_acked_update_and_applies_none_twice() {
    // Killed before the first checkpoint: recovery replays the whole change log.
    crash_and_recover("5s").await;
}

#[tokio::test]
async fn kill_9_during_background_checkpoints_loses_nothing() {
    // Checkpoints run while batches stream in: recovery loads one and replays the log after it.
    crash_and_recover("50ms").await;
}

async fn crash_and_recover(checkpoint_interval: &str) {
    let dir = tempfile::tempdir().unwrap();
    let base = now_ms() - 3_600_000;
    let env = [("TWIN__CHECKPOINT_INTERVAL", checkpoint_interval)];
    let mut cloud = CloudProcess::spawn_with_env(dir.path(), &[], &env).unwrap();
    let c = cloud.clients().await.unwrap();
    load(&c, (0..STATIONS).map(|i| station(i, 112.9 + i as f64 * 0.001, 28.2)).collect()).await.unwrap();

    // Stream batches with several in flight; kill -9 after 40 acks while more are in flight.
    let mut edge = EdgeStream::open(&c, "edge-crash").await.unwrap();
    let mut next_seq = 1u64;
    for _ in 0..8 {
        edge.send(numbered_batch(next_seq, base)).await.unwrap();
        next_seq += 1;
    }
    let mut acked = 0u64;
    while acked < 40 {
        let ack = edge.next_ack().await.unwrap().unwrap();
        assert_eq!(ack.seq, acked + 1, "acks come in order");
        assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
        acked = ack.seq;
        edge.send(numbered_batch(next_seq, base)).await.unwrap();
        next_seq += 1;
    }
    // A late observation, older than everything stored: kept in history only.
    let mut late = EdgeStream::open(&c, "edge-late").await.unwrap();
    let ack = late.send_and_ack(batch(1, base, vec![update(&station_id(0), "pm25", number(999.0), 1)])).await.unwrap();
    assert_eq!(ack.stale, 1);
    cloud.kill9().unwrap();
    drop((edge, late));

    // Restart on the same data: every acked batch is there.
    let cloud = CloudProcess::spawn_with_env(dir.path(), &[], &env).unwrap();
    let c = cloud.clients().await.unwrap();
    let mut edge = EdgeStream::open(&c, "edge-crash").await.unwrap();
    let resume = edge.welcome.last_applied_seq;
    assert!(resume >= acked, "cloud resumed at {resume} but {acked} batches were acked");
    assert!(resume < next_seq);
    // The edge replays from its last ack, as an edge that lost the later acks would: batches the cloud
    // already applied come back as duplicates, the rest are applied once.
    for seq in acked + 1..next_seq {
        let ack = edge.send_and_ack(numbered_batch(seq, base)).await.unwrap();
        assert_eq!(ack.duplicate, seq <= resume, "seq {seq}, cloud had applied up to {resume}");
    }
    let last = next_seq - 1;
    // Exactly once: one revision per entity load plus one per update of every batch, no more.
    let state = c.twin().list(pb::ListRequest { page_size: 1, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(state.revision, STATIONS as u64 + last * UPDATES_PER_BATCH as u64);
    // The latest values are the last batch's.
    for station in [0, 17, STATIONS - 1] {
        let round = ((UPDATES_PER_BATCH - 1 - station) / STATIONS) as i64;
        let expected = ((last * 10 + round as u64) % 1000) as f64;
        let got = reported_number(&c, &station_id(station), "pm25").await.unwrap();
        assert_eq!(got, Some((expected, base + last as i64 * 10 + round)));
    }
    // History holds each observation once.
    let h = c
        .twin()
        .history(pb::HistoryRequest {
            entity_id: station_id(0),
            attribute: "pm25".into(),
            from_unix_ms: base,
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.points.len(), (last as usize) * UPDATES_PER_BATCH / STATIONS + 1);
    assert_eq!(h.points[0].observed_at_unix_ms, base + 1, "the late observation survived the crash");
    assert_eq!(h.points[0].value, Some(number(999.0)));
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero_and_state_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut cloud = CloudProcess::spawn(dir.path(), &["--durability", "os-buffered"]).unwrap();
    let c = cloud.clients().await.unwrap();
    load(&c, vec![station(1, 112.9, 28.2)]).await.unwrap();
    let mut edge = EdgeStream::open(&c, "edge-term").await.unwrap();
    let t = now_ms();
    edge.send_and_ack(batch(1, t, vec![update(&station_id(1), "pm25", number(8.0), 0)])).await.unwrap();
    // An open watch and an open ingest stream must not keep the server from stopping.
    let _watch = c.twin().watch(pb::WatchRequest::default()).await.unwrap();
    let status = cloud.terminate().await.unwrap();
    assert!(status.success(), "cloud exited with {status}");
    let cloud = CloudProcess::spawn(dir.path(), &[]).unwrap();
    let c = cloud.clients().await.unwrap();
    assert_eq!(reported_number(&c, &station_id(1), "pm25").await.unwrap(), Some((8.0, t)));
}

#[tokio::test]
async fn a_supervised_cloud_stops_cleanly_when_its_lifeline_closes_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    // Unsupervised, stdin closing means nothing (e.g. `cloud < /dev/null`): it serves on until SIGTERM.
    let mut cloud = CloudProcess::spawn_with_stdin_pipe(dir.path(), &[]).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(2), cloud.close_stdin()).await;
    assert!(status.is_err(), "an unsupervised cloud ignores its stdin closing: {status:?}");
    assert!(is_running(cloud.pid()));
    assert!(cloud.terminate().await.unwrap().success());

    // Supervised (`citytwin` died, even by SIGKILL): the lifeline's end stops it as SIGTERM would, so it
    // releases its data folder for the next run.
    let lifeline = [(twin_telemetry::signal::LIFELINE_ENV, twin_telemetry::signal::LIFELINE_STDIN)];
    let mut cloud = CloudProcess::spawn_with_stdin_pipe(dir.path(), &lifeline).unwrap();
    assert!(cloud.close_stdin().await.unwrap().success(), "the cloud exits 0 when its lifeline closes");
    let mut again = CloudProcess::spawn(dir.path(), &[]).unwrap();
    assert!(again.terminate().await.unwrap().success());
}

fn run_cloud(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(cloud_binary().unwrap()).args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn print_config_shows_the_effective_layers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cloud.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:7000\"\nhistory_retention = \"2days\"\n").unwrap();
    let (code, out, err) = run_cloud(
        &["--config", file.to_str().unwrap(), "--data-dir", "/srv/twin", "--print-config"],
        &[("TWIN__MAX_BATCH_UPDATES", "777"), ("TWIN__LISTEN", "127.0.0.1:7001")],
    );
    assert_eq!(code, 0, "{err}");
    let printed: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(printed["listen"].as_str(), Some("127.0.0.1:7001"));
    assert_eq!(printed["data_dir"].as_str(), Some("/srv/twin"));
    assert_eq!(printed["max_batch_updates"].as_integer(), Some(777));
    assert_eq!(printed["history_retention"].as_str(), Some("2days"));
}

#[test]
fn bad_config_is_a_clear_error_at_start() {
    let (code, _, err) = run_cloud(&["--listen", "nowhere"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("listen") && err.contains("nowhere"), "{err}");
    let (code, _, err) = run_cloud(&["--print-config"], &[("TWIN__LISTN", "127.0.0.1:1")]);
    assert_eq!(code, 2);
    assert!(err.contains("listn"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "max_message_bytes = \"lots\"\n").unwrap();
    let (code, _, err) = run_cloud(&["--config", file.to_str().unwrap(), "--print-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("max_message_bytes"), "{err}");
    // A catalog file that breaks the format stops the start and names the file and the problem.
    let catalog = dir.path().join("types.toml");
    std::fs::write(
        &catalog,
        "[BeeHive]\ndomain = \"environment\"\nattributes = { weight = { kind = \"number\", min = 5, max = 1 } }\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (code, out, err) = run_cloud(
        &["--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap(), "--catalog-file", catalog.to_str().unwrap()],
        &[],
    );
    assert_ne!(code, 0);
    assert!(!out.contains("listening"), "nothing listens with a bad catalog: {out}");
    assert!(
        err.contains("types.toml") && err.contains("BeeHive.weight") && err.contains("min 5 is above max 1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_in_grpc_metadata_continues_into_exported_spans() {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cloud =
        CloudProcess::spawn(dir.path(), &["--otlp-endpoint", &receiver.endpoint(), "--log", "info"]).unwrap();
    let c = cloud.clients().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(hello("edge-traced")).await.unwrap();
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert("traceparent", TRACEPARENT.parse().unwrap());
    let mut stream = c.ingest().ingest(request).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().is_some(), "welcome");
    drop(tx);
    while let Ok(Some(_)) = stream.message().await {}
    // Shutdown flushes the exporter.
    assert!(cloud.terminate().await.unwrap().success());
    let received = receiver.span_named("ingest", WAIT).await.expect("the ingest span was exported");
    let trace_id: [u8; 16] = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes();
    assert_eq!(received.span.trace_id, trace_id.to_vec(), "trace id continued from traceparent");
    assert_eq!(received.span.parent_span_id, 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes().to_vec());
    assert_eq!(received.service_name.as_deref(), Some("twin-cloud"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn city_load_loads_a_geojson_city_and_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = CloudProcess::spawn(&dir.path().join("data"), &[]).unwrap();
    let file = dir.path().join("block.geojson");
    let square = |lon: f64, lat: f64| {
        format!(
            "[[[{lon},{lat}],[{},{lat}],[{},{}],[{lon},{}],[{lon},{lat}]]]",
            lon + 0.0002,
            lon + 0.0002,
            lat + 0.0002,
            lat + 0.0002
        )
    };
    let features: Vec<String> = (0..3)
        .map(|i| {
            format!(
                r#"{{"type":"Feature","id":"b{i}","properties":{{"height":{}}},"geometry":{{"type":"Polygon","coordinates":{}}}}}"#,
                10 + i * 5,
                square(112.95 + i as f64 * 0.001, 28.2)
            )
        })
        .collect();
    std::fs::write(&file, format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(","))).unwrap();
    let url = format!("http://{}", cloud.addr);
    let run = || {
        Command::new(binary("city-load").unwrap())
            .args(["--cloud", &url, "--geojson", file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let first = run();
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{err}");
    assert!(err.contains("3 entities loaded, 0 unchanged"), "{err}");
    let again = run();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("0 entities loaded, 3 unchanged"), "{err}");
    let c = cloud.clients().await.unwrap();
    let listed = c
        .twin()
        .list(pb::ListRequest {
            filter: Some(pb::Filter { types: vec!["Building".into()], ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.entities.len(), 3);
    // A file that is not valid GeoJSON is a clear error, and nothing is loaded.
    std::fs::write(&file, "{ not json").unwrap();
    let bad = run();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("block.geojson"), "{}", String::from_utf8_lossy(&bad.stderr));
}
