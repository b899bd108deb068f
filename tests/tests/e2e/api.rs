//! Ingest, Get, List, History and the standard gRPC services, over real gRPC.

use std::collections::BTreeSet;

use twin_e2e::*;
use twin_model::GeoPoint;
use twin_proto::pb;

#[tokio::test]
async fn ingest_ack_then_get_sees_the_value() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    load(c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let mut edge = EdgeStream::open(c, "edge-yuelu-1").await.unwrap();
    assert_eq!(edge.welcome.last_applied_seq, 0);
    let t = now_ms() - 1_000;
    let ack = edge.send_and_ack(batch(1, t, vec![update(&station_id(1), "pm25", number(35.5), 0)])).await.unwrap();
    assert_eq!((ack.seq, ack.applied, ack.duplicate), (1, 1, false));
    assert!(ack.rejected.is_empty());
    let e = c.twin().get(pb::GetRequest { id: station_id(1), field_mask: None }).await.unwrap().into_inner();
    let pm25 = e.attributes.iter().find(|a| a.name == "pm25").unwrap();
    assert_eq!(pm25.reported, Some(number(35.5)));
    assert_eq!(pm25.observed_at_unix_ms, t);
    assert_eq!(pm25.unit, "ug/m3");
    assert!(pm25.received_at_unix_ms >= t);
    assert_eq!(e.revision, ack.revision);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn symbols_compact_the_wire_and_field_masks_select() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    load(c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let mut edge = EdgeStream::open(c, "edge-1").await.unwrap();
    let t = now_ms();
    let mut b = batch(1, t, vec![]);
    b.symbols = vec![pb::Symbol { id: 7, name: station_id(1) }, pb::Symbol { id: 8, name: "no2".into() }];
    b.updates.push(pb::Update {
        entity: Some(pb::update::Entity::EntitySymbol(7)),
        attribute: Some(pb::update::Attribute::AttributeSymbol(8)),
        value: Some(number(40.0)),
        observed_offset_ms: -5,
    });
    // Symbols stay defined for later batches on the stream.
    let ack = edge.send_and_ack(b).await.unwrap();
    assert_eq!(ack.applied, 1, "{ack:?}");
    let mut b2 = batch(2, t, vec![]);
    b2.updates.push(pb::Update {
        entity: Some(pb::update::Entity::EntitySymbol(7)),
        attribute: Some(pb::update::Attribute::AttributeName("pm25".into())),
        value: Some(number(12.0)),
        observed_offset_ms: 0,
    });
    assert_eq!(edge.send_and_ack(b2).await.unwrap().applied, 1);
    // A symbol redefined later on the stream means its new name from then on.
    load(c, vec![station(3, 112.95, 28.24)]).await.unwrap();
    let mut b3 = batch(3, t, vec![]);
    b3.symbols = vec![pb::Symbol { id: 7, name: station_id(3) }, pb::Symbol { id: 8, name: "pm10".into() }];
    b3.updates.push(pb::Update {
        entity: Some(pb::update::Entity::EntitySymbol(7)),
        attribute: Some(pb::update::Attribute::AttributeSymbol(8)),
        value: Some(number(77.0)),
        observed_offset_ms: 0,
    });
    assert_eq!(edge.send_and_ack(b3).await.unwrap().applied, 1);
    assert_eq!(reported_number(c, &station_id(3), "pm10").await.unwrap(), Some((77.0, t)));
    assert_eq!(reported_number(c, &station_id(1), "pm10").await.unwrap(), None, "not the former symbol's entity");
    let mask = prost_types::FieldMask { paths: vec!["attributes.no2".into()] };
    let e = c.twin().get(pb::GetRequest { id: station_id(1), field_mask: Some(mask) }).await.unwrap().into_inner();
    assert_eq!(e.attributes.len(), 1);
    assert_eq!(e.attributes[0].name, "no2");
    assert_eq!(e.attributes[0].observed_at_unix_ms, t - 5);
    assert!(e.geometry.is_none());
    let r = c
        .twin()
        .batch_get(pb::BatchGetRequest { ids: vec![station_id(1), station_id(2)], field_mask: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.entities.len(), 1);
    assert_eq!(r.missing_ids, vec![station_id(2)]);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_replayed_batch_is_applied_once() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    load(c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let t = now_ms();
    let b = batch(5, t, vec![update(&station_id(1), "pm25", number(20.0), 0)]);
    let mut edge = EdgeStream::open(c, "edge-1").await.unwrap();
    let first = edge.send_and_ack(b.clone()).await.unwrap();
    assert!(!first.duplicate);
    // The edge reconnects (as after a lost ack) and replays the same batch.
    drop(edge);
    let mut edge = EdgeStream::open(c, "edge-1").await.unwrap();
    assert_eq!(edge.welcome.last_applied_seq, 5);
    let again = edge.send_and_ack(b).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.revision, first.revision, "a replay must not create a revision");
    let h = c
        .twin()
        .history(pb::HistoryRequest {
            entity_id: station_id(1),
            attribute: "pm25".into(),
            from_unix_ms: t - 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.points.len(), 1);
    // Another edge's sequence numbers are independent.
    let mut other = EdgeStream::open(c, "edge-2").await.unwrap();
    let ack = other.send_and_ack(batch(5, t + 1, vec![update(&station_id(1), "pm25", number(21.0), 0)])).await.unwrap();
    assert!(!ack.duplicate);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn an_older_observation_never_overwrites_a_newer_one() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    load(c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let t = now_ms() - 60_000;
    let mut edge = EdgeStream::open(c, "edge-1").await.unwrap();
    edge.send_and_ack(batch(1, t, vec![update(&station_id(1), "pm25", number(50.0), 30_000)])).await.unwrap();
    let late = edge.send_and_ack(batch(2, t, vec![update(&station_id(1), "pm25", number(10.0), 0)])).await.unwrap();
    assert_eq!((late.applied, late.stale), (0, 1));
    assert_eq!(reported_number(c, &station_id(1), "pm25").await.unwrap(), Some((50.0, t + 30_000)));
    cloud.stop().await.unwrap();
}

/// A 12 x 12 grid of stations 0.005 degrees apart (about 500 m) plus a few noise sensors.
async fn load_grid(c: &Clients) -> Vec<(String, &'static str, GeoPoint, f64)> {
    let mut entities = Vec::new();
    let mut truth = Vec::new();
    let t = now_ms() - 10_000;
    for row in 0..12 {
        for col in 0..12 {
            let i = row * 12 + col;
            let p = GeoPoint { lon: 112.90 + col as f64 * 0.005, lat: 28.20 + row as f64 * 0.005 };
            let (id, kind) = if i % 10 == 0 {
                (format!("urn:ngsi-ld:NoiseLevelObserved:test:{i:05}"), "NoiseLevelObserved")
            } else {
                (station_id(i), "AirQualityObserved")
            };
            let mut e = entity(&id, kind, p.lon, p.lat);
            let (attr, value) = if kind == "NoiseLevelObserved" { ("LAeq", 55.0) } else { ("pm25", (i % 50) as f64) };
            e.attributes.push(pb::Attribute {
                name: attr.into(),
                reported: Some(number(value)),
                observed_at_unix_ms: t,
                ..Default::default()
            });
            entities.push(e);
            truth.push((id, kind, p, value));
        }
    }
    load(c, entities).await.unwrap();
    truth
}

async fn list_all(c: &Clients, filter: pb::Filter, page_size: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    for _ in 0..1_000 {
        let r = c
            .twin()
            .list(pb::ListRequest { filter: Some(filter.clone()), page_size, page_token: token, field_mask: None })
            .await
            .unwrap()
            .into_inner();
        assert!(r.entities.len() <= page_size as usize);
        ids.extend(r.entities.into_iter().map(|e| e.id));
        if r.next_page_token.is_empty() {
            return ids;
        }
        token = r.next_page_token;
    }
    panic!("listing did not end");
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    ids.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

#[tokio::test]
async fn list_filters_return_exactly_the_matching_entities_across_pages() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    let truth = load_grid(c).await;

    // Everything, in id order, no duplicates across pages.
    let all = list_all(c, pb::Filter::default(), 7).await;
    assert_eq!(all, sorted(truth.iter().map(|t| t.0.clone())));

    // By type.
    let noise = list_all(c, pb::Filter { types: vec!["NoiseLevelObserved".into()], ..Default::default() }, 4).await;
    assert_eq!(noise, sorted(truth.iter().filter(|t| t.1 == "NoiseLevelObserved").map(|t| t.0.clone())));

    // By bounding box.
    let bbox = pb::BoundingBox { min_lon: 112.912, min_lat: 28.207, max_lon: 112.931, max_lat: 28.226 };
    let in_box = list_all(c, pb::Filter { bbox: Some(bbox), ..Default::default() }, 5).await;
    let expected = truth
        .iter()
        .filter(|t| {
            t.2.lon >= bbox.min_lon && t.2.lon <= bbox.max_lon && t.2.lat >= bbox.min_lat && t.2.lat <= bbox.max_lat
        })
        .map(|t| t.0.clone());
    let expected = sorted(expected);
    assert_eq!(expected.len(), 16);
    assert_eq!(in_box, expected);

    // By radius (1.2 km around the grid centre), combined with a type.
    let center = GeoPoint { lon: 112.9275, lat: 28.2275 };
    let filter = pb::Filter {
        types: vec!["AirQualityObserved".into()],
        within: Some(pb::Circle { center: Some(pb::GeoPoint { lon: center.lon, lat: center.lat }), radius_m: 1_200.0 }),
        ..Default::default()
    };
    let near = list_all(c, filter, 6).await;
    let expected = sorted(
        truth.iter().filter(|t| t.1 == "AirQualityObserved" && t.2.distance_m(&center) <= 1_200.0).map(|t| t.0.clone()),
    );
    assert!(expected.len() > 10 && expected.len() < 100, "{}", expected.len());
    assert_eq!(near, expected);

    // By attribute comparison and id prefix.
    let filter = pb::Filter {
        id_prefix: "urn:ngsi-ld:AirQualityObserved:".into(),
        conditions: vec![pb::AttributeCondition {
            attribute: "pm25".into(),
            op: pb::attribute_condition::Operator::Gt as i32,
            value: Some(number(40.0)),
        }],
        ..Default::default()
    };
    let high = list_all(c, filter, 3).await;
    let expected = sorted(truth.iter().filter(|t| t.1 == "AirQualityObserved" && t.3 > 40.0).map(|t| t.0.clone()));
    assert!(!expected.is_empty());
    assert_eq!(high, expected);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn loading_again_changes_nothing() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    let mut e = station(1, 112.94, 28.23);
    e.attributes.push(pb::Attribute { name: "pm25".into(), reported: Some(number(9.0)), ..Default::default() });
    let first = load(c, vec![e.clone()]).await.unwrap();
    assert_eq!((first.loaded, first.unchanged, first.attributes_applied), (1, 0, 1));
    let again = load(c, vec![e]).await.unwrap();
    assert_eq!((again.loaded, again.unchanged, again.attributes_applied), (0, 1, 0));
    assert_eq!(again.revision, first.revision);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn history_downsamples_into_correct_buckets() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = &cloud.clients;
    load(c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let mut edge = EdgeStream::open(c, "edge-1").await.unwrap();
    // 20 points one second apart, values 0..20, starting on a 10 s boundary.
    let t0 = (now_ms() - 600_000) / 10_000 * 10_000;
    for (seq, chunk) in (0..20).collect::<Vec<i64>>().chunks(7).enumerate() {
        let updates = chunk.iter().map(|&k| update(&station_id(1), "pm25", number(k as f64), k * 1_000)).collect();
        edge.send_and_ack(batch(seq as u64 + 1, t0, updates)).await.unwrap();
    }
    let h = c
        .twin()
        .history(pb::HistoryRequest {
            entity_id: station_id(1),
            attribute: "pm25".into(),
            from_unix_ms: t0,
            to_unix_ms: t0 + 20_000,
            bucket_ms: 5_000,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(i64, u64, f64, f64, f64)> =
        h.buckets.iter().map(|b| (b.start_unix_ms - t0, b.count, b.min, b.max, b.avg)).collect();
    assert_eq!(
        got,
        vec![
            (0, 5, 0.0, 4.0, 2.0),
            (5_000, 5, 5.0, 9.0, 7.0),
            (10_000, 5, 10.0, 14.0, 12.0),
            (15_000, 5, 15.0, 19.0, 17.0)
        ]
    );
    // Raw points with a window and a limit.
    let h = c
        .twin()
        .history(pb::HistoryRequest {
            entity_id: station_id(1),
            attribute: "pm25".into(),
            from_unix_ms: t0 + 3_000,
            to_unix_ms: t0 + 9_000,
            bucket_ms: 0,
            limit: 4,
        })
        .await
        .unwrap()
        .into_inner();
    let times: Vec<i64> = h.points.iter().map(|p| p.observed_at_unix_ms - t0).collect();
    assert_eq!(times, vec![3_000, 4_000, 5_000, 6_000]);
    assert!(h.truncated);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn state_survives_a_clean_restart() {
    let cloud = InProcessCloud::start().await.unwrap();
    let c = cloud.clients.clone();
    load(&c, vec![station(1, 112.94, 28.23)]).await.unwrap();
    let mut edge = EdgeStream::open(&c, "edge-1").await.unwrap();
    let t = now_ms();
    edge.send_and_ack(batch(1, t, vec![update(&station_id(1), "pm25", number(77.0), 0)])).await.unwrap();
    drop(edge);
    let dir = cloud.dir.clone();
    let keep = cloud.stop().await.unwrap();
    let cloud = InProcessCloud::start_in(&dir, |_| {}).await.unwrap();
    assert_eq!(reported_number(&cloud.clients, &station_id(1), "pm25").await.unwrap(), Some((77.0, t)));
    let edge = EdgeStream::open(&cloud.clients, "edge-1").await.unwrap();
    assert_eq!(edge.welcome.last_applied_seq, 1);
    drop(edge);
    cloud.stop().await.unwrap();
    drop(keep);
}

#[tokio::test]
async fn health_reflection_and_catalog_are_served() {
    let cloud = InProcessCloud::start().await.unwrap();
    let channel = cloud.clients.channel.clone();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "twin.v1.TwinService", "twin.v1.IngestService", "twin.v1.AdminService"] {
        let r =
            health.check(tonic_health::pb::HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status(), tonic_health::pb::health_check_response::ServingStatus::Serving, "{service}");
    }
    // Server reflection v1: list services, then resolve a service's file with its imports.
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol("twin.v1.TwinService".into())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileByFilename("google/protobuf/field_mask.proto".into())),
        },
    ];
    let mut responses = reflection.server_reflection_info(tokio_stream::iter(requests)).await.unwrap().into_inner();
    let mut services = Vec::new();
    let mut files = 0;
    while let Some(r) = responses.message().await.unwrap() {
        match r.message_response.unwrap() {
            MessageResponse::ListServicesResponse(l) => services = l.service.into_iter().map(|s| s.name).collect(),
            MessageResponse::FileDescriptorResponse(f) => {
                assert!(!f.file_descriptor_proto.is_empty());
                files += 1;
            }
            other => panic!("unexpected reflection response {other:?}"),
        }
    }
    for s in ["twin.v1.TwinService", "twin.v1.IngestService", "twin.v1.AdminService", "grpc.health.v1.Health"] {
        assert!(services.iter().any(|x| x == s), "{s} missing from {services:?}");
    }
    assert_eq!(files, 2);
    // The older v1alpha reflection service, which Python grpcio's client uses, answers too.
    use tonic_reflection::pb::v1alpha as alpha;
    let mut alpha_client = alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let req = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses = alpha_client.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let r = responses.message().await.unwrap().unwrap();
    assert!(matches!(
        r.message_response,
        Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(_))
    ));
    // The catalog.
    let catalog = cloud.clients.admin().get_catalog(pb::GetCatalogRequest {}).await.unwrap().into_inner();
    let aq = catalog.types.iter().find(|t| t.name == "AirQualityObserved").unwrap();
    let pm25 = aq.attributes.iter().find(|a| a.name == "pm25").unwrap();
    assert_eq!((pm25.kind.as_str(), pm25.unit.as_str(), pm25.min), ("number", "ug/m3", Some(0.0)));
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn extra_entity_types_load_from_a_catalog_file_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("extra.toml");
    std::fs::write(
        &file,
        "[BeeHive]\ndomain = \"environment\"\ndescription = \"An urban beehive\"\n\
         [BeeHive.attributes]\nweight = { kind = \"number\", unit = \"kg\", min = 0, max = 200 }\n",
    )
    .unwrap();
    let cloud = InProcessCloud::start_with(|c| c.catalog_file = Some(file.clone())).await.unwrap();
    let c = &cloud.clients;
    let catalog = c.admin().get_catalog(pb::GetCatalogRequest {}).await.unwrap().into_inner();
    assert!(catalog.types.iter().any(|t| t.name == "BeeHive"));
    assert!(catalog.types.iter().any(|t| t.name == "AirQualityObserved"), "built-in types stay");
    load(c, vec![entity("urn:ngsi-ld:BeeHive:1", "BeeHive", 112.94, 28.23)]).await.unwrap();
    let mut edge = EdgeStream::open(c, "edge-bees").await.unwrap();
    let ack = edge
        .send_and_ack(batch(
            1,
            now_ms(),
            vec![
                update("urn:ngsi-ld:BeeHive:1", "weight", number(31.5), 0),
                update("urn:ngsi-ld:BeeHive:1", "weight", number(900.0), 0),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(ack.applied, 1);
    assert_eq!(ack.rejected.len(), 1);
    assert_eq!(ack.rejected[0].code(), pb::RejectCode::OutOfRange);
    cloud.stop().await.unwrap();
}
