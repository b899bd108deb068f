//! `edge`: the City Twin edge agent binary. It wires the configured sources into the agent and runs until
//! SIGINT or SIGTERM, then shuts down in order (see `edge::agent`), leaving whatever the cloud has not
//! acknowledged durable in the outbox for the next start.

use std::{
    io::{IsTerminal, Write},
    sync::Arc,
};

use anyhow::Context;
use clap::Parser;
use edge::{
    agent::{Agent, AgentSetup},
    config::{Flags, Settings},
    mqtt::MqttBridge,
    simulator::Simulator,
    uplink::Registration,
};
use twin_model::{Catalog, Entity, EntityStatic, Geometry, Shape, TypeName};
use twin_outbox::Outbox;

fn main() -> std::process::ExitCode {
    let flags = Flags::parse();
    let settings = match edge::config::load(&flags, std::env::vars().collect()).and_then(|raw| raw.validate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edge: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if flags.print_config {
        print!("{}", settings.raw.to_toml());
        return std::process::ExitCode::SUCCESS;
    }
    if flags.dead_letters {
        return match list_dead_letters(&settings) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edge: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    twin_telemetry::runtime::block_on("edge", async { run(settings).await.map(|()| std::process::ExitCode::SUCCESS) })
}

fn list_dead_letters(settings: &Settings) -> anyhow::Result<()> {
    let outbox = Outbox::open(settings.outbox.clone()).with_context(|| {
        format!("cannot open the outbox in {} (is the agent running?)", settings.outbox.path.display())
    })?;
    let letters = outbox.dead_letters(usize::MAX).context("cannot read the dead letters")?;
    let mut out = std::io::stdout().lock();
    for d in &letters {
        let u = &d.update;
        writeln!(
            out,
            "batch {}\t{}\t{}\t{:?}\t{}\t{}",
            d.seq, u.entity, u.attribute, u.value, u.observed_at, d.reason
        )?;
    }
    writeln!(out, "{} dead letters", letters.len())?;
    Ok(())
}

fn load_catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    let mut catalog = Catalog::builtin();
    if let Some(path) = settings.raw.catalog_file.as_ref().filter(|p| !p.as_os_str().is_empty()) {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        catalog.extend_from_toml(&text, &path.display().to_string())?;
    }
    Ok(catalog)
}

/// The box's own entity: placed at the middle of its sensors, in their district.
fn node_entity(settings: &Settings, sensors: &[Entity]) -> anyhow::Result<Entity> {
    let points: Vec<(f64, f64)> = sensors
        .iter()
        .filter_map(|e| match e.header.geometry.as_ref().map(|g| &g.shape) {
            Some(Shape::Point(p)) => Some((p.lon, p.lat)),
            _ => None,
        })
        .collect();
    let (lon, lat) = if points.is_empty() {
        (112.97, 28.19) // the centre of Changsha, for a box with no placed sensors
    } else {
        let n = points.len() as f64;
        (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n)
    };
    let mut relationships = std::collections::BTreeMap::new();
    let district =
        sensors.iter().find_map(|e| e.header.relationships.iter().find(|(k, _)| k.as_str() == "refDistrict"));
    if let Some((name, id)) = district.filter(|_| settings.raw.simulator.district != edge::simulator::ALL_DISTRICTS) {
        relationships.insert(name.clone(), id.clone());
    }
    Ok(Entity::new(EntityStatic {
        id: settings.node_entity.clone(),
        entity_type: TypeName::new(edge::self_report::EDGE_NODE_TYPE)?,
        geometry: Some(Geometry::point(lon, lat)),
        relationships,
    }))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let telemetry = twin_telemetry::init(&twin_telemetry::TelemetryConfig {
        log_filter: settings.raw.log.clone(),
        otlp_endpoint: Some(settings.raw.otlp_endpoint.clone()).filter(|e| !e.is_empty()),
        service_name: "twin-edge".into(),
        ansi,
    })
    .context("cannot set up telemetry")?;
    let result = run_agent(settings).await;
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.ok();
    result
}

async fn run_agent(settings: Settings) -> anyhow::Result<()> {
    let catalog = Arc::new(load_catalog(&settings)?);
    let raw = &settings.raw;
    let simulator = if raw.simulate {
        let config = raw.simulator.clone();
        let sim = tokio::task::spawn_blocking(move || {
            let city = twin_city::changsha(config.seed);
            Simulator::new(&config, &city)
        })
        .await
        .context("city generation panicked")??;
        Some(sim)
    } else {
        None
    };
    let mqtt = match &raw.mqtt {
        Some(config) => Some((config.clone(), config.mapper(&catalog)?)),
        None => None,
    };
    let sensors: Vec<Entity> = simulator.as_ref().map(|s| s.entities().to_vec()).unwrap_or_default();
    let mut registered = vec![node_entity(&settings, &sensors)?];
    if raw.register_entities {
        registered.extend(sensors.iter().cloned());
    }
    let mut uplink = settings.uplink.clone();
    uplink.register = Some(Registration { catalog: catalog.clone(), entities: Arc::new(registered) });
    let setup = AgentSetup {
        catalog: catalog.clone(),
        node_entity: settings.node_entity.clone(),
        sensors: sensors.len() as u64,
        deadband: raw.deadband.clone(),
        outbox: settings.outbox.clone(),
        uplink,
        self_report_interval: raw.self_report_interval,
    };
    let mut agent = Agent::start(setup).context("cannot start the agent")?;
    let mut sources = Vec::new();
    if let Some(sim) = simulator {
        let (task, _) = sim.spawn(agent.sender(), agent.sources_shutdown());
        sources.push(task);
    }
    if let Some((config, mapper)) = mqtt {
        let (task, stats) = MqttBridge::spawn(config, mapper, agent.sender(), agent.sources_shutdown());
        agent.report_unmappable(move || stats.unmappable_messages.get());
        sources.push(task);
    }
    let depth = agent.outbox().stats().depth_updates;
    // Before the line below: a supervisor may send SIGTERM as soon as it reads it.
    let signal = twin_telemetry::signal::shutdown_signal();
    // Scripts and tests read this line.
    println!(
        "edge {} running: district {}, {} sensors{}, outbox {} ({} updates buffered), cloud {}",
        settings.edge_id,
        raw.simulator.district,
        sensors.len(),
        if raw.mqtt.is_some() { " + mqtt" } else { "" },
        settings.outbox.path.display(),
        depth,
        raw.cloud
    );
    std::io::stdout().flush().ok();

    tokio::select! {
        () = signal => {}
        e = agent.failed() => return Err(e).context("the agent stopped"),
    }
    let report = agent.shutdown(sources).await.context("shutdown failed")?;
    println!(
        "edge {} stopped: {} updates acknowledged this run, {} left in the outbox (durable, sent on the next start)",
        settings.edge_id, report.uplink.updates_acked, report.outbox.depth_updates
    );
    Ok(())
}
