//! Bad input gets a precise status or rejection, and the server keeps serving.

use tonic::Code;
use twin_e2e::*;
use twin_proto::pb::{self, RejectCode};

#[tokio::test]
async fn bad_updates_are_rejected_one_by_one_with_reasons() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    load(c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let mut edge = EdgeStream::open(c, "edge-1").await.unwrap();
    let id = station_id(1);
    let t = now_ms();
    let mut b = batch(
        1,
        t,
        vec![
            update(&id, "pm25", number(12.0), 0),
            update("urn:bad id", "pm25", number(1.0), 0),
            update("urn:ngsi-ld:AirQualityObserved:test:missing", "pm25", number(1.0), 0),
            update(&id, "colour", number(1.0), 0),
            update(&id, "pm25", number(-4.0), 0),
            update(&id, "pm25", number(f64::NAN), 0),
            update(&id, "pm25", pb::Value { kind: Some(pb::value::Kind::Text("high".into())) }, 0),
            pb::Update { value: None, ..update(&id, "pm25", number(1.0), 0) },
            pb::Update { entity: Some(pb::update::Entity::EntitySymbol(99)), ..update(&id, "pm25", number(1.0), 0) },
            update(&id, "pm25", number(1.0), -t),
        ],
    );
    b.upserts.push(entity("urn:ngsi-ld:Unicorn:1", "Unicorn", 112.9, 28.2));
    b.upserts.push(entity("urn:ngsi-ld:Odd:1", "AirQualityObserved", 500.0, 28.2));
    let ack = edge.send_and_ack(b).await.unwrap();
    assert_eq!(ack.applied, 1);
    let got: Vec<(bool, u32, RejectCode)> = ack.rejected.iter().map(|r| (r.upsert, r.index, r.code())).collect();
    assert_eq!(
        got,
        vec![
            (true, 0, RejectCode::UnknownType),
            (true, 1, RejectCode::InvalidGeometry),
            (false, 1, RejectCode::InvalidId),
            (false, 2, RejectCode::UnknownEntity),
            (false, 3, RejectCode::UnknownAttribute),
            (false, 4, RejectCode::OutOfRange),
            (false, 5, RejectCode::NotFinite),
            (false, 6, RejectCode::WrongKind),
            (false, 7, RejectCode::MissingField),
            (false, 8, RejectCode::UnknownSymbol),
            (false, 9, RejectCode::InvalidTimestamp),
        ]
    );
    let range = ack.rejected.iter().find(|r| r.code() == RejectCode::OutOfRange).unwrap();
    assert_eq!(range.entity_id, id);
    assert_eq!(range.attribute, "pm25");
    assert!(
        range.message.contains(&id) && range.message.contains("pm25") && range.message.contains("0..=1000"),
        "{}",
        range.message
    );
    // The valid update landed.
    assert_eq!(reported_number(c, &id, "pm25").await.unwrap(), Some((12.0, t)));
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn protocol_violations_end_the_stream_with_a_precise_status() {
    let cloud = InProcessCloud::start_with(|c| c.max_message_bytes = 64 * 1024).await.unwrap();
    let c = &cloud.clients;
    // A batch before hello.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::IngestRequest { message: Some(pb::ingest_request::Message::Batch(batch(1, now_ms(), vec![]))) })
        .await
        .unwrap();
    let err = match c.ingest().ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await {
        Err(s) => s,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("hello"), "{err}");
    // A malformed edge id.
    let err = EdgeStream::open(c, "edge/one").await.unwrap_err();
    assert!(format!("{err:#}").contains("hello.edge_id"), "{err:#}");
    // Sequence 0.
    let mut edge = EdgeStream::open(c, "edge-1").await.unwrap();
    edge.send(batch(0, now_ms(), vec![])).await.unwrap();
    let status = edge.next_ack().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("seq"), "{status}");
    // An oversized message.
    let mut edge = EdgeStream::open(c, "edge-2").await.unwrap();
    let huge = (0..5_000).map(|i| update(&station_id(i), "pm25", number(1.0), 0)).collect();
    edge.send(batch(1, now_ms(), huge)).await.unwrap();
    let status = edge.next_ack().await.unwrap().unwrap_err();
    assert!(matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted), "{status}");
    assert!(status.message().contains("too large"), "{status}");
    // The server keeps serving.
    load(c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let mut edge = EdgeStream::open(c, "edge-3").await.unwrap();
    let ack =
        edge.send_and_ack(batch(1, now_ms(), vec![update(&station_id(1), "pm25", number(3.0), 0)])).await.unwrap();
    assert_eq!(ack.applied, 1);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn bad_queries_get_invalid_argument_or_not_found() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    load(c, (0..5).map(|i| station(i, 112.9, 28.2)).collect()).await.unwrap();
    let mut twin = c.twin();
    let code = |r: Result<tonic::Response<pb::Entity>, tonic::Status>| r.unwrap_err();

    let err = code(twin.get(pb::GetRequest { id: "has space".into(), field_mask: None }).await);
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("id: entity id has a character not allowed"), "{err}");
    let err = code(twin.get(pb::GetRequest { id: "x".repeat(300), field_mask: None }).await);
    assert!(err.message().contains("300 bytes long"), "{err}");
    let err = code(twin.get(pb::GetRequest { id: "urn:none".into(), field_mask: None }).await);
    assert_eq!(err.code(), Code::NotFound);
    let mask = prost_types::FieldMask { paths: vec!["colour".into()] };
    let err = code(twin.get(pb::GetRequest { id: station_id(1), field_mask: Some(mask) }).await);
    assert!(err.message().contains("field_mask"), "{err}");

    let list = |filter: pb::Filter, token: &str| pb::ListRequest {
        filter: Some(filter),
        page_size: 2,
        page_token: token.into(),
        field_mask: None,
    };
    let err = twin.list(list(pb::Filter::default(), "%%%not-a-token")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("page_token is malformed"), "{err}");
    let page = twin.list(list(pb::Filter::default(), "")).await.unwrap().into_inner();
    assert!(!page.next_page_token.is_empty());
    let other = pb::Filter { id_prefix: "urn:".into(), ..Default::default() };
    let err = twin.list(list(other, &page.next_page_token)).await.unwrap_err();
    assert!(err.message().contains("different filter"), "{err}");
    let err =
        twin.list(list(pb::Filter { types: vec!["Unicorn".into()], ..Default::default() }, "")).await.unwrap_err();
    assert!(err.message().contains("unknown entity type Unicorn"), "{err}");
    let bad_box = pb::BoundingBox { min_lon: 113.0, min_lat: 28.0, max_lon: 112.0, max_lat: 29.0 };
    let err = twin.list(list(pb::Filter { bbox: Some(bad_box), ..Default::default() }, "")).await.unwrap_err();
    assert!(err.message().starts_with("filter.bbox"), "{err}");
    let circle = pb::Circle { center: Some(pb::GeoPoint { lon: 112.9, lat: 28.2 }), radius_m: f64::NAN };
    let err = twin.list(list(pb::Filter { within: Some(circle), ..Default::default() }, "")).await.unwrap_err();
    assert!(err.message().contains("radius_m"), "{err}");

    let history = |attribute: &str, bucket_ms: i64| pb::HistoryRequest {
        entity_id: station_id(1),
        attribute: attribute.into(),
        bucket_ms,
        from_unix_ms: now_ms() - 3_600_000,
        ..Default::default()
    };
    let err = twin.history(history("colour", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("has no attribute colour"), "{err}");
    let err = twin.history(history("aqiCategory", 1_000)).await.unwrap_err();
    assert!(err.message().contains("not numeric"), "{err}");
    let err = twin.history(history("pm25", -5)).await.unwrap_err();
    assert!(err.message().contains("bucket_ms"), "{err}");
    let err = twin.history(pb::HistoryRequest { from_unix_ms: 0, ..history("pm25", 1) }).await.unwrap_err();
    assert!(err.message().contains("buckets; at most"), "{err}");
    let err =
        twin.history(pb::HistoryRequest { from_unix_ms: 10, to_unix_ms: 5, ..history("pm25", 0) }).await.unwrap_err();
    assert!(err.message().contains("after to_unix_ms"), "{err}");
    let err = twin
        .watch(pb::WatchRequest { after_revision: Some(0), initial_snapshot: true, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Still serving.
    assert!(twin.get(pb::GetRequest { id: station_id(1), field_mask: None }).await.is_ok());
    cloud.stop().await.unwrap();
}
