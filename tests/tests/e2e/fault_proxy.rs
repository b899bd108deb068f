//! The fault-injecting proxy that the edge agent's acceptance tests put between edge and cloud: each
//! fault does what it says, over raw TCP (to tell a FIN from an RST) and over gRPC to an in-process cloud.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use twin_e2e::{fault_proxy::ProxyStats, *};
use twin_proto::pb;

/// How long a fault may take to show at the client.
const PROMPT: Duration = Duration::from_secs(5);

/// A cloud with one station, a proxy in front of it, and gRPC clients that go through the proxy.
async fn cloud_behind_proxy() -> (InProcessCloud, FaultProxy, Clients) {
    let cloud = InProcessCloud::start().await.unwrap();
    load(&cloud.clients, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let proxy = FaultProxy::start(cloud.addr).await.unwrap();
    let via_proxy = Clients { channel: connect(proxy.addr).await.unwrap() };
    (cloud, proxy, via_proxy)
}

fn pm25(seq: u64, value: f64) -> pb::Batch {
    batch(seq, now_ms(), vec![update(&station_id(1), "pm25", number(value), 0)])
}

/// A fresh gRPC channel through the proxy that does not retry: its first call shows whether the proxy
/// lets a new connection through.
async fn fresh_get(proxy: &FaultProxy) -> Result<pb::Entity, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", proxy.addr))
        .unwrap()
        .connect_timeout(PROMPT)
        .timeout(PROMPT)
        .connect_lazy();
    let clients = Clients { channel };
    let mut twin = clients.twin();
    let get = twin.get(pb::GetRequest { id: station_id(1), field_mask: None });
    tokio::time::timeout(PROMPT * 2, get).await.expect("a call through the proxy hung").map(|r| r.into_inner())
}

/// What an open ingest stream sees next after the link broke: must come promptly and not be an ack.
async fn stream_breaks(edge: &mut EdgeStream) -> String {
    let next = tokio::time::timeout(PROMPT, edge.next_ack()).await.expect("the stream did not break promptly");
    match next {
        Ok(Ok(ack)) => panic!("got an ack through a broken link: {ack:?}"),
        Ok(Err(status)) => format!("{status}"),
        Err(e) => format!("{e:#}"),
    }
}

/// An echo server on 127.0.0.1:0 for raw TCP tests.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Reads one byte with a bound: Ok(0) is a clean close (FIN), an error of kind ConnectionReset an RST.
async fn read_once(s: &mut TcpStream) -> std::io::Result<usize> {
    let mut b = [0u8; 1];
    tokio::time::timeout(PROMPT, s.read(&mut b)).await.expect("read hung")
}

async fn echoes(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(PROMPT, s.read_exact(&mut back)).await.expect("no echo in time").unwrap();
    assert_eq!(back, msg);
}

#[tokio::test]
async fn a_healthy_proxy_forwards_ingest_and_get() {
    let (cloud, proxy, c) = cloud_behind_proxy().await;
    let mut edge = EdgeStream::open(&c, "edge-1").await.unwrap();
    let ack = edge.send_and_ack(pm25(1, 35.5)).await.unwrap();
    assert_eq!((ack.seq, ack.applied, ack.duplicate), (1, 1, false));
    assert_eq!(reported_number(&c, &station_id(1), "pm25").await.unwrap().map(|v| v.0), Some(35.5));
    let stats = proxy.stats();
    assert!(stats.accepted >= 1, "{stats:?}");
    assert!(stats.bytes_up > 0 && stats.bytes_down > 0, "{stats:?}");
    assert_eq!((stats.refused, stats.cut, stats.reset), (0, 0, 0));
    drop(edge);
    drop(c);
    drop(proxy);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn cut_ends_open_streams_refuses_new_connections_and_heals() {
    let (cloud, proxy, c) = cloud_behind_proxy().await;
    let mut edge = EdgeStream::open(&c, "edge-1").await.unwrap();
    edge.send_and_ack(pm25(1, 1.0)).await.unwrap();

    proxy.set(Fault::Cut);
    let seen = stream_breaks(&mut edge).await;
    eprintln!("open stream after cut: {seen}");
    assert!(proxy.stats().cut >= 1, "{:?}", proxy.stats());
    let refused = fresh_get(&proxy).await;
    assert!(refused.is_err(), "a new connection got through a cut link: {refused:?}");
    assert!(proxy.stats().refused >= 1, "{:?}", proxy.stats());

    proxy.set(Fault::None);
    assert!(fresh_get(&proxy).await.is_ok());
    let c2 = Clients { channel: connect(proxy.addr).await.unwrap() };
    let mut edge = EdgeStream::open(&c2, "edge-1").await.unwrap();
    assert_eq!(edge.welcome.last_applied_seq, 1);
    edge.send_and_ack(pm25(2, 2.0)).await.unwrap();
    drop((edge, c, c2, proxy));
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn reset_aborts_open_streams_refuses_new_connections_and_heals() {
    let (cloud, proxy, c) = cloud_behind_proxy().await;
    let mut edge = EdgeStream::open(&c, "edge-1").await.unwrap();
    edge.send_and_ack(pm25(1, 1.0)).await.unwrap();

    proxy.set(Fault::Reset);
    let seen = stream_breaks(&mut edge).await;
    eprintln!("open stream after reset: {seen}");
    assert!(seen.contains("ConnectionReset"), "a reset should reach the client as an RST: {seen}");
    let stats = proxy.stats();
    assert_eq!((stats.reset, stats.cut), (1, 0), "{stats:?}");
    let refused = fresh_get(&proxy).await;
    assert!(refused.is_err(), "a new connection got through a reset link: {refused:?}");

    proxy.set(Fault::None);
    assert!(fresh_get(&proxy).await.is_ok());
    let c2 = Clients { channel: connect(proxy.addr).await.unwrap() };
    let mut edge = EdgeStream::open(&c2, "edge-1").await.unwrap();
    edge.send_and_ack(pm25(2, 2.0)).await.unwrap();
    drop((edge, c, c2, proxy));
    cloud.stop().await.unwrap();
}

/// The difference between the two outages, where it shows: at the socket. A cut is a FIN (read returns
/// 0), a reset an RST (read fails with ConnectionReset), for open and for new connections alike.
#[tokio::test]
async fn cut_closes_with_fin_and_reset_aborts_with_rst() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();

    let mut open = TcpStream::connect(proxy.addr).await.unwrap();
    echoes(&mut open, b"hello").await;
    proxy.set(Fault::Cut);
    assert_eq!(read_once(&mut open).await.unwrap(), 0, "a cut must close cleanly");
    let mut new = TcpStream::connect(proxy.addr).await.unwrap();
    assert_eq!(read_once(&mut new).await.unwrap(), 0, "a cut must refuse new connections cleanly");

    proxy.set(Fault::None);
    let mut open = TcpStream::connect(proxy.addr).await.unwrap();
    echoes(&mut open, b"again").await;
    proxy.set(Fault::Reset);
    let err = read_once(&mut open).await.expect_err("a reset must abort, not close");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    let mut new = TcpStream::connect(proxy.addr).await.unwrap();
    let err = read_once(&mut new).await.expect_err("a reset must refuse new connections with an RST");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");

    let stats = proxy.stats();
    assert_eq!((stats.cut, stats.reset, stats.refused), (1, 1, 2), "{stats:?}");
    // A cut or reset that is switched off before a connection's tasks look still tears it down.
    proxy.set(Fault::None);
    let mut open = TcpStream::connect(proxy.addr).await.unwrap();
    echoes(&mut open, b"third").await;
    proxy.set(Fault::Cut);
    proxy.set(Fault::None);
    assert_eq!(read_once(&mut open).await.unwrap(), 0, "a brief cut was missed");
}

#[tokio::test]
async fn a_stall_holds_requests_and_releases_them_when_it_ends() {
    let (cloud, proxy, c) = cloud_behind_proxy().await;
    let mut edge = EdgeStream::open(&c, "edge-1").await.unwrap();
    edge.send_and_ack(pm25(1, 1.0)).await.unwrap();

    proxy.set(Fault::Stall);
    // Let any write that was under way when the stall began finish before taking the count.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let up_before = proxy.stats().bytes_up;
    edge.send(pm25(2, 2.0)).await.unwrap();
    let get = tokio::spawn({
        let c = c.clone();
        async move { reported_number(&c, &station_id(1), "pm25").await.unwrap() }
    });
    let early = tokio::time::timeout(Duration::from_millis(500), edge.next_ack()).await;
    assert!(early.is_err(), "an ack came through a stall: {early:?}");
    assert!(!get.is_finished(), "a Get came through a stall");
    assert_eq!(proxy.stats().bytes_up, up_before, "bytes went up during a stall");
    // Nothing reached the cloud either.
    assert_eq!(reported_number(&cloud.clients, &station_id(1), "pm25").await.unwrap().map(|v| v.0), Some(1.0));

    proxy.set(Fault::None);
    let ack = tokio::time::timeout(PROMPT, edge.next_ack()).await.expect("no ack after the stall").unwrap().unwrap();
    assert_eq!((ack.seq, ack.applied, ack.duplicate), (2, 1, false));
    let got = tokio::time::timeout(PROMPT, get).await.expect("the held Get did not complete").unwrap();
    assert!(got.is_some());
    // The stream is intact: later batches flow as before.
    assert_eq!(edge.send_and_ack(pm25(3, 3.0)).await.unwrap().applied, 1);
    assert_eq!(reported_number(&c, &station_id(1), "pm25").await.unwrap().map(|v| v.0), Some(3.0));
    drop((edge, c, proxy));
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_delay_adds_latency_each_way_and_loses_nothing() {
    let (cloud, proxy, c) = cloud_behind_proxy().await;
    // Warm the connection so the timing below is one round trip, not a handshake.
    reported_number(&c, &station_id(1), "pm25").await.unwrap();

    proxy.set(Fault::Delay(Duration::from_millis(200)));
    let t0 = Instant::now();
    let got = reported_number(&c, &station_id(1), "pm25").await;
    let took = t0.elapsed();
    assert!(got.is_ok(), "{got:?}");
    assert!(took >= Duration::from_millis(390), "a 200 ms delay each way gave a {took:?} round trip");
    assert!(took < Duration::from_secs(3), "a 200 ms delay each way gave a {took:?} round trip");

    let mut edge = EdgeStream::open(&c, "edge-1").await.unwrap();
    let t0 = Instant::now();
    assert_eq!(edge.send_and_ack(pm25(1, 4.0)).await.unwrap().applied, 1);
    assert!(t0.elapsed() >= Duration::from_millis(390), "{:?}", t0.elapsed());
    drop((edge, c, proxy));
    cloud.stop().await.unwrap();
}

/// A megabyte through the proxy while it flips between delay, stall and healthy arrives whole and in order.
#[tokio::test]
async fn bytes_held_by_delays_and_stalls_arrive_whole_and_in_order() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let sent: Vec<u8> = (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let writer = tokio::spawn({
        let sent = sent.clone();
        async move {
            for chunk in sent.chunks(7_000) {
                w.write_all(chunk).await.unwrap();
            }
            w.shutdown().await.unwrap();
        }
    });
    let flips = async {
        for f in [
            Fault::Delay(Duration::from_millis(30)),
            Fault::Stall,
            Fault::None,
            Fault::Stall,
            Fault::Delay(Duration::from_millis(5)),
        ] {
            proxy.set(f);
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        proxy.set(Fault::None);
    };
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut got));
    let (read, ()) = tokio::join!(read, flips);
    read.expect("echo did not finish").unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes were reordered or corrupted");
    let stats = proxy.stats();
    assert_eq!((stats.bytes_up, stats.bytes_down), (sent.len() as u64, sent.len() as u64));
    assert_eq!(
        stats,
        ProxyStats { accepted: 1, bytes_up: stats.bytes_up, bytes_down: stats.bytes_down, ..Default::default() }
    );
}

#[tokio::test]
async fn the_chaos_schedule_is_a_function_of_its_seed() {
    let healthy = Duration::from_millis(100)..Duration::from_millis(2_000);
    let faulty = Duration::from_millis(50)..Duration::from_millis(1_500);
    let a = FaultProxy::schedule(7, healthy.clone(), faulty.clone(), 60);
    assert_eq!(a, FaultProxy::schedule(7, healthy.clone(), faulty.clone(), 60));
    assert_ne!(a, FaultProxy::schedule(8, healthy.clone(), faulty.clone(), 60));
    for (i, (fault, d)) in a.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(*fault, Fault::None, "step {i}");
            assert!(healthy.contains(d), "step {i}: {d:?}");
        } else {
            assert_ne!(*fault, Fault::None, "step {i}");
            assert!(faulty.contains(d), "step {i}: {d:?}");
        }
    }
    // Every kind of fault shows up.
    let kinds = |f: &Fault| std::mem::discriminant(f);
    let seen: std::collections::HashSet<_> = a.iter().map(|(f, _)| kinds(f)).collect();
    assert_eq!(seen.len(), 5, "{a:?}");
    // A prefix does not depend on how many steps were asked for.
    assert_eq!(FaultProxy::schedule(7, healthy.clone(), faulty.clone(), 10), a[..10]);
}

/// Two proxies running chaos from one seed switch through the same faults, and switch back to healthy
/// when it stops.
#[tokio::test]
async fn two_proxies_with_one_seed_run_the_same_chaos() {
    let upstream = echo_server().await;
    let one = FaultProxy::start(upstream).await.unwrap();
    let two = FaultProxy::start(upstream).await.unwrap();
    let healthy = Duration::from_millis(10)..Duration::from_millis(30);
    let faulty = Duration::from_millis(10)..Duration::from_millis(30);
    let stop_after = Duration::from_millis(600);
    one.chaos(99, healthy.clone(), faulty.clone(), stop_after);
    two.chaos(99, healthy.clone(), faulty.clone(), stop_after);
    // Chaos ends by switching to healthy, and nothing switches after that.
    tokio::time::sleep(stop_after + Duration::from_millis(300)).await;
    let settled = (one.switches().len(), two.switches().len());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((one.switches().len(), two.switches().len()), settled, "chaos did not stop");
    let (a, b) = (one.switches(), two.switches());
    let expected: Vec<Fault> =
        FaultProxy::schedule(99, healthy, faulty, a.len().max(b.len())).into_iter().map(|s| s.0).collect();
    // The last switch is the return to healthy; the steps before it follow the schedule.
    assert_eq!(a[..a.len() - 1], expected[..a.len() - 1], "{a:?}");
    assert_eq!(b[..b.len() - 1], expected[..b.len() - 1], "{b:?}");
    assert!(a.len() > 10, "chaos made too few switches in {stop_after:?}: {a:?}");
    assert_eq!((one.fault(), two.fault()), (Fault::None, Fault::None));
}
