//! Loading a city into the cloud through the API.

use std::collections::BTreeMap;

use twin_e2e::*;
use twin_model::{Catalog, Entity, EntityId, EntityStatic, Geometry, TypeName};
use twin_proto::pb;

/// Counts the entities a List with `filter` returns, across pages.
async fn count(c: &Clients, filter: pb::Filter) -> usize {
    let mut n = 0;
    let mut token = String::new();
    loop {
        let mask = prost_types::FieldMask { paths: vec!["id".into()] };
        let r = c
            .twin()
            .list(pb::ListRequest {
                filter: Some(filter.clone()),
                page_size: 5_000,
                page_token: token,
                field_mask: Some(mask),
            })
            .await
            .unwrap()
            .into_inner();
        n += r.entities.len();
        if r.next_page_token.is_empty() {
            return n;
        }
        token = r.next_page_token;
    }
}

#[tokio::test]
async fn loading_entities_in_chunks_is_idempotent_and_reports_progress() {
    let cloud = InProcessCloud::start().await.unwrap();
    let catalog = Catalog::builtin();
    let entities: Vec<Entity> = (0..2_500)
        .map(|i| {
            Entity::new(EntityStatic {
                id: EntityId::new(&format!("urn:ngsi-ld:FireHydrant:test:{i:05}")).unwrap(),
                entity_type: TypeName::new("FireHydrant").unwrap(),
                geometry: Some(Geometry::point(112.90 + (i % 50) as f64 * 0.001, 28.20 + (i / 50) as f64 * 0.001)),
                relationships: BTreeMap::new(),
            })
        })
        .collect();
    let mut reports = Vec::new();
    let first = twin_client::load_entities(cloud.clients.channel.clone(), &catalog, &entities, 1_000, |done, total| {
        reports.push((done, total))
    })
    .await
    .unwrap();
    assert_eq!(reports, vec![(1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]);
    assert_eq!((first.loaded, first.unchanged), (2_500, 0));
    assert!(first.rejected.is_empty());
    let again =
        twin_client::load_entities(cloud.clients.channel.clone(), &catalog, &entities, 1_000, |_, _| {}).await.unwrap();
    assert_eq!((again.loaded, again.unchanged), (0, 2_500));
    assert_eq!(again.revision, first.revision, "loading again changes nothing");
    let c = &cloud.clients;
    assert_eq!(count(c, pb::Filter { types: vec!["FireHydrant".into()], ..Default::default() }).await, 2_500);
    // The western half of the grid: columns 0..25.
    let bbox = pb::BoundingBox { min_lon: 112.8995, min_lat: 28.0, max_lon: 112.9245, max_lat: 28.3 };
    assert_eq!(count(c, pb::Filter { bbox: Some(bbox), ..Default::default() }).await, 1_250);
    cloud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demonstration_city_loads_and_lists_by_type_and_bbox() {
    let city = twin_city::changsha(twin_city::DEFAULT_SEED);
    let cloud = InProcessCloud::start().await.unwrap();
    let catalog = Catalog::builtin();
    let summary = twin_client::load_entities(cloud.clients.channel.clone(), &catalog, &city.entities, 2_000, |_, _| {})
        .await
        .unwrap();
    assert!(summary.rejected.is_empty(), "{:?}", &summary.rejected[..summary.rejected.len().min(5)]);
    assert_eq!(summary.loaded as usize, city.entities.len());
    let c = &cloud.clients;
    let by_type = city.count_by_type();
    for t in ["District", "Building", "AirQualityObserved", "TrafficFlowObserved", "Ambulance", "RiverGauge"] {
        let listed = count(c, pb::Filter { types: vec![t.into()], ..Default::default() }).await;
        assert_eq!(listed, by_type[t], "{t}");
    }
    // Around Wuyi Square: the entities whose envelope meets the box, computed from the city itself.
    let bbox = twin_model::BoundingBox::new(112.965, 28.185, 112.99, 28.205).unwrap();
    let expected = city
        .entities
        .iter()
        .filter(|e| e.header.geometry.as_ref().is_some_and(|g| g.envelope().intersects(&bbox)))
        .count();
    assert!(expected > 1_000, "{expected}");
    let wire =
        pb::BoundingBox { min_lon: bbox.min_lon, min_lat: bbox.min_lat, max_lon: bbox.max_lon, max_lat: bbox.max_lat };
    assert_eq!(count(c, pb::Filter { bbox: Some(wire), ..Default::default() }).await, expected);
    cloud.stop().await.unwrap();
}
