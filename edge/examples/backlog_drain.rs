//! How fast a backlog drains after an outage, for BENCHMARKS.md (issue 4): fills an outbox (fsync on, the
//! default batches of 2,000) with one million updates while no cloud is reachable, then starts the uplink
//! against an in-process cloud (fsync durability, the cloud's defaults) and times it until the outbox is empty
//! and the last sealed batch is acknowledged, and until the latest-first snapshot (every attribute's latest
//! value, sent before the backlog) was acknowledged.
//!
//! ```sh
//! cargo run --release -p edge --example backlog_drain -- [--sensors 10000] [--per-sensor 100]
//! ```
//!
//! The sensors are `AirQualityObserved` stations, registered in the cloud before the outage. Each reports
//! `--per-sensor` updates round-robin over five attributes (pm25, pm10, no2, o3, temperature), one round a
//! minute during the outage, values with one decimal; updates are appended in the order they were observed,
//! 2,000 per durable append, as the agent's filter does. Cloud, uplink and outbox share the machine's cores.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use edge::uplink::{Uplink, UplinkConfig};
use tokio_util::sync::CancellationToken;
use twin_e2e::{InProcessCloud, load, reported_number, station, station_id, thread_cpu_s};
use twin_model::{AttrName, EdgeId, EntityId, Value, now_unix_ms};
use twin_outbox::{Outbox, OutboxConfig, OutboxUpdate};

const ATTRIBUTES: [&str; 5] = ["pm25", "pm10", "no2", "o3", "temperature"];
/// Observations one minute apart per round.
const ROUND_MS: i64 = 60_000;
/// How long the drain may take before the example gives up.
const WAIT: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Args {
    sensors: usize,
    per_sensor: usize,
}

fn parse_args() -> Result<Args> {
    let mut a = Args { sensors: 10_000, per_sensor: 100 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--sensors" => a.sensors = value()?.parse().context("--sensors")?,
            "--per-sensor" => a.per_sensor = value()?.parse().context("--per-sensor")?,
            other => bail!("unknown flag {other}; flags: --sensors N --per-sensor M"),
        }
    }
    ensure!(a.sensors > 0 && a.per_sensor > 0, "--sensors and --per-sensor must be above 0");
    Ok(a)
}

/// The value of sensor `s`'s attribute `a` in round `r`: plausible, smooth, one decimal.
fn value(s: usize, a: usize, r: usize) -> f64 {
    let base = [35.0, 60.0, 40.0, 80.0, 24.0][a];
    let swing = [15.0, 25.0, 20.0, 30.0, 4.0][a];
    let phase = (s % 97) as f64 * 0.3 + a as f64;
    let v = base + swing * ((r as f64 * 0.2 + phase).sin()) + (s % 7) as f64;
    (v * 10.0).round() / 10.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let total = args.sensors * args.per_sensor;
    let rounds = args.per_sensor.div_ceil(ATTRIBUTES.len());

    let cloud = InProcessCloud::start().await?;
    let registered = Instant::now();
    let stations: Vec<_> = (0..args.sensors)
        .map(|i| station(i, 112.9 + (i % 100) as f64 * 0.002, 28.1 + (i / 100) as f64 * 0.002))
        .collect();
    for chunk in stations.chunks(2_000) {
        load(&cloud.clients, chunk.to_vec()).await?;
    }
    println!("cloud: {} stations registered in {:.1} s", args.sensors, registered.elapsed().as_secs_f64());

    // The outage: the outbox fills while no uplink runs.
    let dir = tempfile::tempdir()?;
    let config = OutboxConfig::new(dir.path().join("outbox"));
    let outbox = Outbox::open(config.clone())?;
    let ids: Vec<EntityId> = (0..args.sensors).map(|i| EntityId::new(&station_id(i))).collect::<Result<_, _>>()?;
    let names: Vec<AttrName> = ATTRIBUTES.iter().map(|a| AttrName::new(a)).collect::<Result<_, _>>()?;
    let outage_start = now_unix_ms() - rounds as i64 * ROUND_MS;
    let mut last: Vec<Option<f64>> = vec![None; args.sensors];
    let filling = Instant::now();
    let mut chunk = Vec::with_capacity(config.max_batch_updates);
    let mut appended = 0;
    'fill: for r in 0..rounds {
        for (s, id) in ids.iter().enumerate() {
            for (a, name) in names.iter().enumerate() {
                if r * ATTRIBUTES.len() + a >= args.per_sensor {
                    continue;
                }
                let v = value(s, a, r);
                if a == 0 {
                    last[s] = Some(v);
                }
                chunk.push(OutboxUpdate {
                    entity: id.clone(),
                    attribute: name.clone(),
                    value: Value::Number(v),
                    observed_at: outage_start + r as i64 * ROUND_MS + s as i64,
                });
                if chunk.len() == config.max_batch_updates {
                    outbox.append(&chunk)?;
                    appended += chunk.len();
                    chunk.clear();
                }
                if appended + chunk.len() == total {
                    break 'fill;
                }
            }
        }
    }
    outbox.append(&chunk)?;
    appended += chunk.len();
    outbox.seal()?;
    let fill_s = filling.elapsed().as_secs_f64();
    let before = outbox.stats();
    ensure!(appended == total && before.depth_updates == total as u64, "appended {appended} of {total}: {before:?}");
    println!(
        "outbox: {total} updates ({} sensors x {}, {} attributes) appended durably in {fill_s:.2} s; {} sealed \
         batches, {:.1} MB; {} latest values",
        args.sensors,
        args.per_sensor,
        before.latest_attributes,
        before.sealed_batches,
        before.used_bytes as f64 / 1e6,
        outbox.latest().len()
    );

    // Let the cloud's checkpoint of the registration pass before the clock starts.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(registered.elapsed())).await;

    // The link is back.
    let uplink = UplinkConfig::new(EdgeId::new("bench-backlog")?, format!("http://{}", cloud.addr));
    let latest_first_after = uplink.latest_first_after;
    let shutdown = CancellationToken::new();
    let cpu_before = thread_cpu_s();
    let started = Instant::now();
    let (task, stats) = Uplink::spawn(uplink, outbox.clone(), shutdown.clone());
    let (mut connected_s, mut latest_s) = (None, None);
    let last_sealed = before.last_sealed_seq;
    let drained_s = loop {
        let elapsed = started.elapsed();
        {
            let s = stats.borrow();
            if connected_s.is_none() && s.connected {
                connected_s = Some(elapsed.as_secs_f64());
            }
            if latest_s.is_none() && s.latest_first_snapshots > 0 {
                latest_s = Some(elapsed.as_secs_f64());
            }
            if s.last_acked_seq >= last_sealed && outbox.stats().depth_updates == 0 {
                break elapsed.as_secs_f64();
            }
        }
        if elapsed > WAIT {
            bail!("the backlog did not drain in {WAIT:?}: {:?}, {:?}", outbox.stats(), stats.borrow());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let end = stats.borrow().clone();
    let cpu = thread_cpu_s();
    shutdown.cancel();
    task.await.context("uplink panicked")??;

    // The cloud holds every sensor's latest pm25 (a sample of them, checked after the drain).
    let step = (args.sensors / 50).max(1);
    for s in (0..args.sensors).step_by(step) {
        let got = reported_number(&cloud.clients, &station_id(s), "pm25").await?.map(|(v, _)| v);
        ensure!(got == last[s], "sensor {s}: the cloud holds pm25 {got:?}, the last value sent was {:?}", last[s]);
    }
    cloud.stop().await?;

    ensure!(end.dead_lettered == 0, "{} updates were rejected", end.dead_lettered);
    println!(
        "drain: backlog of {} batches (latest first after a backlog of {latest_first_after:?}): {}",
        before.sealed_batches,
        if end.latest_first_snapshots > 0 { "latest first kicked in" } else { "latest first did not kick in" }
    );
    println!();
    println!("| step | figure |");
    println!("|---|---|");
    println!("| connected (Welcome) | {:.2} s |", connected_s.unwrap_or(f64::NAN));
    println!(
        "| every attribute's latest value acknowledged ({} updates, latest first) | {:.2} s |",
        end.latest_first_updates,
        latest_s.unwrap_or(f64::NAN)
    );
    println!(
        "| backlog drained: outbox empty, last sealed seq {last_sealed} acked | **{drained_s:.2} s** ({:.0} updates/s) |",
        total as f64 / drained_s
    );
    println!(
        "| uplink bytes | {:.1} MB sent ({:.1} bytes/update incl. the snapshot), {:.2} MB received, {} reconnects |",
        end.bytes_sent as f64 / 1e6,
        end.bytes_sent as f64 / (total as u64 + end.latest_first_updates) as f64,
        end.bytes_received as f64 / 1e6,
        end.reconnects
    );
    let mut used: Vec<(String, f64)> =
        cpu.into_iter().map(|(name, s)| (name.clone(), s - cpu_before.get(&name).copied().unwrap_or(0.0))).collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    let used: Vec<String> = used.iter().filter(|(_, s)| *s >= 0.05).map(|(n, s)| format!("{n} {s:.1} s")).collect();
    println!("| CPU during the drain, by thread (Linux) | {} |", used.join(", "));
    println!(
        "| checked after the drain | the latest pm25 of {} sampled sensors is in the cloud |",
        args.sensors.div_ceil(step)
    );
    Ok(())
}
