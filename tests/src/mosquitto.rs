//! A real Mosquitto broker as a child process on `127.0.0.1`, and a small publisher, for the tests of the
//! edge agent's MQTT bridge. Mosquitto comes from the system (`scripts/setup-debian` installs it): tests
//! that need it fail with that advice when it is missing, they never skip.

use std::{
    fs,
    io::Read,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::WAIT;

/// How many free ports [`MosquittoBroker::start`] tries before giving up (another process may take the
/// port between our probe and Mosquitto's bind).
const PORT_ATTEMPTS: usize = 5;
/// How long [`MosquittoBroker::start_on`] keeps retrying a port that is still in use (a broker that was
/// just stopped).
const REBIND_WAIT: Duration = Duration::from_secs(10);

/// Where Mosquitto is: `mosquitto` on `PATH`, else Debian's `/usr/sbin/mosquitto` (not on a normal
/// user's `PATH`).
pub fn mosquitto_binary() -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("mosquitto")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/mosquitto"), PathBuf::from("/usr/local/sbin/mosquitto")])
        .find(|p| p.is_file())
        .context("mosquitto is not installed (not on PATH, nor /usr/sbin/mosquitto): run scripts/setup-debian")
}

/// A Mosquitto broker listening on `127.0.0.1:port`, anonymous, without persistence. Killed on drop.
#[derive(Debug)]
pub struct MosquittoBroker {
    port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl MosquittoBroker {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start() -> Result<Self> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match Self::try_start(port)? {
                Ok(broker) => return Ok(broker),
                Err(log) => last = Some(log),
            }
        }
        bail!("mosquitto found no free port in {PORT_ATTEMPTS} attempts; its last log:\n{}", last.unwrap_or_default())
    }

    /// Starts a broker on `port` (e.g. the port of one just stopped, to test reconnection), retrying for a
    /// while if the port is still in use.
    pub fn start_on(port: u16) -> Result<Self> {
        let deadline = Instant::now() + REBIND_WAIT;
        loop {
            match Self::try_start(port)? {
                Ok(broker) => return Ok(broker),
                Err(log) if Instant::now() < deadline => {
                    let _ = log;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(log) => bail!("mosquitto could not listen on port {port} within {REBIND_WAIT:?}:\n{log}"),
            }
        }
    }

    /// `Ok(Ok(broker))`, `Ok(Err(log))` when the port was in use, `Err` on any other failure.
    fn try_start(port: u16) -> Result<Result<Self, String>> {
        let binary = mosquitto_binary()?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("mosquitto.conf");
        let log = dir.path().join("mosquitto.log");
        fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n\
                 log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            ),
        )?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut broker = MosquittoBroker { port, child, log, _dir: dir };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = broker.child.try_wait()? {
                let log = broker.log_text();
                if log.contains("Address already in use") {
                    return Ok(Err(log));
                }
                bail!("mosquitto exited with {status} while starting on port {port}:\n{log}");
            }
            // Connectable and ours: another process could hold the port, so the log must say it runs.
            if broker.log_text().contains(" running") && TcpStream::connect(broker.addr()).is_ok() {
                return Ok(Ok(broker));
            }
            if Instant::now() > deadline {
                bail!("mosquitto did not accept connections on port {port} within {WAIT:?}:\n{}", broker.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What Mosquitto logged so far.
    pub fn log_text(&self) -> String {
        read_lossy(&self.log)
    }

    /// Stops it with SIGTERM (its clean shutdown: clients see their connection closed) and waits for it.
    pub fn stop(mut self) -> Result<()> {
        crate::sigterm(&self.child)?;
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.kill();
                bail!("mosquitto did not exit within {WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// SIGKILL: the broker vanishes as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MosquittoBroker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// A port that was free a moment ago (the listener is dropped before returning).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    let _ = fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Publishes `messages` (topic, payload) in order with QoS 1 to the broker on `127.0.0.1:port` and
/// waits until the broker has acknowledged every one, then disconnects.
pub async fn publish(port: u16, messages: &[(&str, &[u8])]) -> Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut options = MqttOptions::new(format!("twin-test-publisher-{}-{n}", std::process::id()), "127.0.0.1", port);
    options.set_max_packet_size(16 << 20, 16 << 20);
    // Every publish is queued at once: the channel must hold them all, plus the disconnect.
    let (client, mut events) = AsyncClient::new(options, messages.len() + 2);
    for (topic, payload) in messages {
        client.try_publish(*topic, QoS::AtLeastOnce, false, payload.to_vec()).context("cannot queue a publish")?;
    }
    let mut acked = 0;
    let work = async {
        while acked < messages.len() {
            if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.context("publisher connection failed")? {
                acked += 1;
            }
        }
        client.try_disconnect()?;
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return anyhow::Ok(()),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, work)
        .await
        .with_context(|| format!("the broker acknowledged {acked} of {} publishes within {WAIT:?}", messages.len()))?
}
