//! Wire bytes per update for BENCHMARKS.md (issue 4): the simulator's traffic for one district, through the
//! default deadband, sent for real by an [`Agent`] to an in-process cloud, against the same updates published
//! one JSON message each over MQTT (QoS 1) in the shape of a FIWARE Smart Data Models NGSI-LD payload.
//!
//! ```sh
//! cargo run --release -p edge --example wire_bytes -- [--district furong] [--ticks 60] [--speed 60] \
//!     [--tick-ms 1000] [--seed 2024] [--batch-updates 2000] [--mosquitto]
//! ```
//!
//! **Traffic.** The simulator's readings for `--ticks` ticks of `--tick-ms` real time at `--speed` (the
//! simulated clock starts at a fixed Monday 07:00 in Changsha, so runs are comparable), observed times a
//! real tick apart and ending just before now. The agent's filter applies `DeadbandConfig::default()`; the
//! example applies the same deadband itself to know which updates were sent (for the JSON baseline) and
//! checks that both agree. Ticks are fed one at a time and each is acknowledged before the next, so batches
//! form as in a live agent (by size, and by the 200 ms seal timer at the end of each tick).
//!
//! **Uplink bytes** are the agent's `UplinkStats::bytes_sent` (bytes handed to TCP: zstd-compressed gRPC
//! with HTTP/2 framing and keep-alives) counted from after registration and the first self-report was
//! acknowledged, until the last update was; `bytes_received` (acks, HTTP/2 control) likewise.
//!
//! **MQTT bytes** are counted exactly, on the same basis (bytes handed to TCP; TCP/IP headers excluded on
//! both sides): per message the PUBLISH packet, 1 byte of fixed header + the remaining-length varint + the
//! topic (2 + its length) + the packet id (2) + the JSON payload, and the 4-byte PUBACK back. With
//! `--mosquitto` the messages are also published for real to a Mosquitto broker through a byte-counting
//! TCP forwarder, which checks the count.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use edge::{
    agent::{Agent, AgentSetup},
    deadband::{Deadband, DeadbandConfig},
    simulator::{Simulator, SimulatorConfig},
    source::Reading,
    uplink::{Registration, UplinkConfig},
    wire::{SessionEncoder, UpdateRef},
};
use serde_json::{Map, Value as Json, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use twin_e2e::{InProcessCloud, MosquittoBroker};
use twin_model::{Catalog, EdgeId, Entity, EntityId, EntityStatic, Geometry, TypeName, Value, now_unix_ms};
use twin_outbox::OutboxConfig;

/// Monday 2024-06-03 07:00 in Changsha (UTC+8): the morning rush starts within the first simulated hour.
const SIM_START_UNIX_MS: i64 = 1_717_369_200_000;
/// How long any wait in this example may take.
const WAIT: Duration = Duration::from_secs(120);
const EDGE: &str = "bench-wire";

#[derive(Debug)]
struct Args {
    district: String,
    ticks: u32,
    speed: f64,
    tick_ms: i64,
    seed: u64,
    /// The outbox's `max_batch_updates`.
    batch_updates: usize,
    mosquitto: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        district: "furong".into(),
        ticks: 60,
        speed: 60.0,
        tick_ms: 1_000,
        seed: twin_city::DEFAULT_SEED,
        batch_updates: OutboxConfig::new("").max_batch_updates,
        mosquitto: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--district" => a.district = value()?,
            "--ticks" => a.ticks = value()?.parse().context("--ticks")?,
            "--speed" => a.speed = value()?.parse().context("--speed")?,
            "--tick-ms" => a.tick_ms = value()?.parse().context("--tick-ms")?,
            "--seed" => a.seed = value()?.parse().context("--seed")?,
            "--batch-updates" => a.batch_updates = value()?.parse().context("--batch-updates")?,
            "--mosquitto" => a.mosquitto = true,
            other => {
                bail!(
                    "unknown flag {other}; flags: --district D --ticks N --speed X --tick-ms MS --seed S \
                     --batch-updates N --mosquitto"
                )
            }
        }
    }
    ensure!(
        a.ticks > 0 && a.tick_ms > 0 && a.batch_updates > 0,
        "--ticks, --tick-ms and --batch-updates must be above 0"
    );
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let city = twin_city::changsha(args.seed);
    let sim_config = SimulatorConfig {
        district: args.district.clone(),
        speed: args.speed,
        seed: args.seed,
        tick: Duration::from_millis(args.tick_ms as u64),
        start_unix_ms: Some(SIM_START_UNIX_MS),
        ..SimulatorConfig::default()
    };
    let sim = Simulator::new(&sim_config, &city)?;
    let clock = sim.clock();
    let catalog = Arc::new(Catalog::builtin());

    // The ticks' readings, and the updates the default deadband lets through (what the agent sends).
    let first_observed = now_unix_ms() - i64::from(args.ticks) * args.tick_ms - 10_000;
    let mut ticks: Vec<Vec<Reading>> = Vec::with_capacity(args.ticks as usize);
    let mut deadband = Deadband::new(&DeadbandConfig::default(), &catalog)?;
    let mut sent: Vec<Reading> = Vec::new();
    let mut sent_per_tick = Vec::with_capacity(args.ticks as usize);
    for k in 0..i64::from(args.ticks) {
        let sim_t = clock.at(Duration::from_millis((k * args.tick_ms) as u64));
        let mut readings = Vec::new();
        sim.readings_at(sim_t, first_observed + k * args.tick_ms, &mut readings);
        let before = sent.len();
        for r in &readings {
            let u = &r.update;
            if deadband.admit(&r.entity_type, &u.entity, &u.attribute, &u.value, u.observed_at) {
                sent.push(r.clone());
            }
        }
        sent_per_tick.push(sent.len() - before);
        ticks.push(readings);
    }
    let readings: usize = ticks.iter().map(Vec::len).sum();
    println!(
        "{}: {} entities, {} ticks of {} ms at speed {}: {readings} readings, {} pass the default deadband \
         (first tick {}, later ticks {:.0} on average); generated in {:.1} s",
        args.district,
        sim.entities().len(),
        args.ticks,
        args.tick_ms,
        args.speed,
        sent.len(),
        sent_per_tick[0],
        sent_per_tick[1..].iter().sum::<usize>() as f64 / (sent_per_tick.len().max(2) - 1) as f64,
        started.elapsed().as_secs_f64()
    );

    let protobuf = protobuf_bytes(&sent, &sent_per_tick, args.batch_updates);
    let uplink = send_over_uplink(&sim, &catalog, &ticks, sent.len(), &sent_per_tick, args.batch_updates).await?;
    let mqtt = MqttCount::of(&sent)?;

    println!();
    println!("| traffic | updates | bytes sent | bytes/update | bytes received | bytes/update both ways |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, n: usize, tx: u64, rx: u64| {
        let per = |b: u64| b as f64 / n as f64;
        println!("| {name} | {n} | {tx} | {:.1} | {rx} | {:.1} |", per(tx), per(tx + rx));
    };
    row("uplink: gRPC + zstd, symbols, HTTP/2 (all ticks)", uplink.updates, uplink.sent, uplink.received);
    row(
        "uplink: ticks after the first",
        uplink.updates - uplink.first_updates,
        uplink.sent - uplink.first_sent,
        uplink.received - uplink.first_received,
    );
    row("JSON NGSI-LD over MQTT QoS 1 (PUBLISH / PUBACK)", mqtt.messages, mqtt.publish_bytes, mqtt.puback_bytes);
    row(
        "JSON over MQTT, ticks after the first",
        mqtt.messages - sent_per_tick[0],
        mqtt.publish_bytes - mqtt.first_tick_publish(sent_per_tick[0]),
        4 * (mqtt.messages - sent_per_tick[0]) as u64,
    );
    println!();
    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    println!(
        "ratio uplink / JSON-MQTT: sent {:.3}, both ways {:.3}; after the first tick: sent {:.3} (target <= 0.1)",
        ratio(uplink.sent, mqtt.publish_bytes),
        ratio(uplink.sent + uplink.received, mqtt.publish_bytes + mqtt.puback_bytes),
        ratio(uplink.sent - uplink.first_sent, mqtt.publish_bytes - mqtt.first_tick_publish(sent_per_tick[0])),
    );
    println!(
        "the uplink's protobuf before compression (symbols, time offsets; batches of up to {} per tick): {:.1} \
         bytes/update",
        args.batch_updates,
        protobuf as f64 / sent.len() as f64
    );
    println!(
        "JSON payload {:.1} bytes/message on average (topic {:.1}); example: {} {}",
        mqtt.payload_bytes as f64 / mqtt.messages as f64,
        mqtt.topic_bytes as f64 / mqtt.messages as f64,
        mqtt.example_topic,
        mqtt.example_payload
    );

    if args.mosquitto {
        let measured = publish_through_mosquitto(&sent).await?;
        println!(
            "mosquitto, measured through a counting forwarder: {} bytes to the broker ({} computed), {} back \
             ({} computed)",
            measured.0, mqtt.publish_bytes, measured.1, mqtt.puback_bytes
        );
    }
    Ok(())
}

/// The encoded size of the sent updates as one session's batches (a tick's updates in batches of up to
/// `batch_updates`, as the outbox seals them), before compression and HTTP/2 framing.
fn protobuf_bytes(sent: &[Reading], per_tick: &[usize], batch_updates: usize) -> u64 {
    let mut encoder = SessionEncoder::new();
    let (mut first, mut bytes, mut seq) = (0, 0u64, 0);
    for n in per_tick {
        for chunk in sent[first..first + n].chunks(batch_updates) {
            seq += 1;
            let batch = encoder.encode(seq, chunk.iter().map(|r| UpdateRef::from(&r.update)));
            bytes += prost::Message::encoded_len(&batch) as u64;
        }
        first += n;
    }
    bytes
}

/// What the uplink put on the link for the measured updates.
#[derive(Debug)]
struct UplinkBytes {
    updates: usize,
    sent: u64,
    received: u64,
    first_updates: usize,
    first_sent: u64,
    first_received: u64,
}

async fn send_over_uplink(
    sim: &Simulator,
    catalog: &Arc<Catalog>,
    ticks: &[Vec<Reading>],
    expected: usize,
    sent_per_tick: &[usize],
    batch_updates: usize,
) -> Result<UplinkBytes> {
    let cloud = InProcessCloud::start().await?;
    let dir = tempfile::tempdir()?;
    let node = EntityId::new(&format!("urn:ngsi-ld:EdgeNode:{EDGE}"))?;
    let mut entities: Vec<Entity> = sim.entities().to_vec();
    entities.push(Entity::new(EntityStatic {
        id: node.clone(),
        entity_type: TypeName::new("EdgeNode")?,
        geometry: Some(Geometry::point(112.98, 28.19)),
        relationships: Default::default(),
    }));
    let uplink = UplinkConfig {
        register: Some(Registration { catalog: catalog.clone(), entities: Arc::new(entities) }),
        ..UplinkConfig::new(EdgeId::new(EDGE)?, format!("http://{}", cloud.addr))
    };
    let setup = AgentSetup {
        catalog: catalog.clone(),
        node_entity: node,
        sensors: sim.entities().len() as u64,
        deadband: DeadbandConfig::default(),
        outbox: OutboxConfig { max_batch_updates: batch_updates, ..OutboxConfig::new(dir.path().join("outbox")) },
        uplink,
        // One report at start (before the measurement), none during it.
        self_report_interval: Duration::from_secs(24 * 3600),
    };
    let agent = Agent::start(setup)?;
    let stats = agent.uplink_stats();
    let filter = agent.filter_stats();
    let outbox = agent.outbox().clone();
    let registration = Instant::now();
    wait_for("registration and the first self-report", || {
        stats.borrow().updates_acked > 0 && outbox.stats().depth_updates == 0
    })
    .await?;
    let base = stats.borrow().clone();
    println!(
        "registration of {} entities and the first self-report ({} updates): {} bytes sent in {:.1} s",
        sim.entities().len() + 1,
        base.updates_acked,
        base.bytes_sent,
        registration.elapsed().as_secs_f64()
    );

    let tx = agent.sender();
    let (mut fed, mut first) = (0u64, None);
    let sending = Instant::now();
    for tick in ticks {
        for chunk in tick.chunks(3_000) {
            tx.send(chunk.to_vec().into()).await.context("the agent stopped")?;
        }
        fed += tick.len() as u64;
        wait_for("the tick to be acknowledged", || {
            let s = stats.borrow();
            let processed = filter.stored.get() + filter.suppressed.get() + filter.refused_when_full.get();
            processed == fed && s.updates_acked - base.updates_acked == filter.stored.get()
        })
        .await?;
        if first.is_none() {
            first = Some(stats.borrow().clone());
        }
    }
    let sending_s = sending.elapsed().as_secs_f64();
    let end = stats.borrow().clone();
    let first = first.context("no tick")?;
    let stored = filter.stored.get() as usize;
    ensure!(filter.refused_when_full.get() == 0, "the outbox refused readings");
    ensure!(stored == expected, "the agent sent {stored} updates, the example's deadband {expected}");
    ensure!(end.dead_lettered == 0 && end.reconnects == 0, "a clean run has no dead letters or reconnects: {end:?}");
    println!("uplink: {stored} updates acknowledged in {sending_s:.1} s ({} batches)", end.batches_acked);
    // The filter ends when every sender is gone.
    drop(tx);
    agent.shutdown(Vec::new()).await?;
    cloud.stop().await?;
    Ok(UplinkBytes {
        updates: stored,
        sent: end.bytes_sent - base.bytes_sent,
        received: end.bytes_received - base.bytes_received,
        first_updates: sent_per_tick[0],
        first_sent: first.bytes_sent - base.bytes_sent,
        first_received: first.bytes_received - base.bytes_received,
    })
}

/// Polls `cond` every 5 ms, for at most [`WAIT`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The MQTT topic and the NGSI-LD JSON payload (FIWARE Smart Data Models, normalized form, one attribute)
/// of one update.
fn mqtt_message(r: &Reading) -> Result<(String, Vec<u8>)> {
    let u = &r.update;
    let ty = r.entity_type.as_str();
    let id = u.entity.as_str();
    let suffix = id.strip_prefix(&format!("urn:ngsi-ld:{ty}:")).unwrap_or(id);
    let topic = format!("city/{ty}/{suffix}");
    let observed = UNIX_EPOCH + Duration::from_millis(u64::try_from(u.observed_at)?);
    let observed_at = humantime::format_rfc3339_millis(observed).to_string();
    let attribute = match &u.value {
        Value::Point(p) => json!({
            "type": "GeoProperty",
            "value": { "type": "Point", "coordinates": [p.lon, p.lat] },
            "observedAt": observed_at,
        }),
        v => {
            let value = match v {
                Value::Number(x) => json!(x),
                Value::Integer(i) => json!(i),
                Value::Bool(b) => json!(b),
                Value::Text(s) => json!(s),
                Value::Point(_) => Json::Null,
            };
            json!({ "type": "Property", "value": value, "observedAt": observed_at })
        }
    };
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.insert("type".into(), json!(ty));
    body.insert(u.attribute.as_str().to_owned(), attribute);
    Ok((topic, serde_json::to_vec(&Json::Object(body))?))
}

/// The exact MQTT 3.1.1 bytes of publishing messages with QoS 1.
#[derive(Debug)]
struct MqttCount {
    messages: usize,
    publish_bytes: u64,
    puback_bytes: u64,
    payload_bytes: u64,
    topic_bytes: u64,
    per_message: Vec<u64>,
    example_topic: String,
    example_payload: String,
}

impl MqttCount {
    fn of(sent: &[Reading]) -> Result<Self> {
        let mut count = MqttCount {
            messages: sent.len(),
            publish_bytes: 0,
            puback_bytes: 4 * sent.len() as u64,
            payload_bytes: 0,
            topic_bytes: 0,
            per_message: Vec::with_capacity(sent.len()),
            example_topic: String::new(),
            example_payload: String::new(),
        };
        for r in sent {
            let (topic, payload) = mqtt_message(r)?;
            // Variable header: topic (2-byte length + UTF-8) and packet id (2); then the payload.
            let remaining = 2 + topic.len() + 2 + payload.len();
            let packet = 1 + varint_len(remaining) + remaining;
            count.publish_bytes += packet as u64;
            count.per_message.push(packet as u64);
            count.payload_bytes += payload.len() as u64;
            count.topic_bytes += topic.len() as u64;
            if count.example_topic.is_empty() && r.entity_type.as_str() == "AirQualityObserved" {
                count.example_topic = topic;
                count.example_payload = String::from_utf8_lossy(&payload).into_owned();
            }
        }
        Ok(count)
    }

    /// PUBLISH bytes of the first `n` messages.
    fn first_tick_publish(&self, n: usize) -> u64 {
        self.per_message[..n].iter().sum()
    }
}

/// The length of MQTT's remaining-length varint.
fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Publishes every message to a real Mosquitto through a forwarder that counts the bytes each way; returns
/// (to the broker, back) less a connect-and-disconnect without messages measured the same way.
async fn publish_through_mosquitto(sent: &[Reading]) -> Result<(u64, u64)> {
    let broker = MosquittoBroker::start()?;
    let up = Arc::new(AtomicU64::new(0));
    let down = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let target = broker.addr();
    let (u, d) = (up.clone(), down.clone());
    let forwarder = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else { break };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, u.clone()));
            tokio::spawn(pipe(sr, cw, d.clone()));
        }
    });
    let messages: Vec<(String, Vec<u8>)> = sent.iter().map(mqtt_message).collect::<Result<_>>()?;
    let refs: Vec<(&str, &[u8])> = messages.iter().map(|(t, p)| (t.as_str(), p.as_slice())).collect();
    // A session without messages: CONNECT, CONNACK, DISCONNECT (the publisher's client ids have the same
    // length in both sessions).
    twin_e2e::mosquitto::publish(port, &[]).await?;
    let settle = || tokio::time::sleep(Duration::from_millis(300));
    settle().await;
    let (up0, down0) = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
    twin_e2e::mosquitto::publish(port, &refs).await?;
    settle().await;
    let (up1, down1) = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
    forwarder.abort();
    broker.stop()?;
    Ok((up1 - 2 * up0, down1 - 2 * down0))
}

/// Copies `from` to `to` until either ends, adding the bytes to `count`.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                count.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = to.shutdown().await;
}
