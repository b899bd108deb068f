#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every value of every type stays inside the catalog over a simulated week.

mod common;

use std::collections::BTreeSet;

use common::{DAY, MONDAY, all_types, entity};
use twin_model::Catalog;
use twin_signals::{Environment, live_attributes, sample};

#[test]
fn a_week_of_every_type_passes_the_catalog() {
    let catalog = Catalog::builtin();
    let env = Environment::new(42);
    for ty in all_types() {
        let live: BTreeSet<&str> = live_attributes(&ty).iter().copied().collect();
        for i in 0..3 {
            let e = entity(&ty, i);
            let mut seen = BTreeSet::new();
            let mut t = MONDAY;
            while t < MONDAY + 7 * DAY {
                for (name, value) in sample(&env, &e, t) {
                    assert!(live.contains(name.as_str()), "{ty}.{name} is produced but not listed as live");
                    if let Err(v) = catalog.check_value(&e.entity_type, &name, value.clone()) {
                        panic!("{ty}.{name} = {value} at {t}: {v}");
                    }
                    seen.insert(name.as_str().to_owned());
                }
                t += 10 * 60_000;
            }
            // Every listed attribute is produced at some point (the state of charge only by electric buses).
            for name in &live {
                if *name != "stateOfCharge" {
                    assert!(seen.contains(*name), "{ty}.{name} is listed as live but never produced");
                }
            }
        }
    }
}

#[test]
fn live_attributes_exist_in_the_catalog() {
    let catalog = Catalog::builtin();
    for ty in all_types() {
        let def = catalog.get(&ty).unwrap();
        for name in live_attributes(&ty) {
            assert!(def.attributes.contains_key(*name), "{ty}.{name}");
        }
    }
    assert!(live_attributes("District").is_empty());
    assert!(live_attributes("RoadSegment").is_empty());
    assert!(live_attributes("EdgeNode").is_empty());
    assert!(!live_attributes("AirQualityObserved").is_empty());
}
