use super::*;

fn name(s: &str) -> AttrName {
    AttrName::new(s).unwrap()
}

#[test]
fn builtin_catalog_loads() {
    let c = Catalog::builtin();
    assert!(c.get("AirQualityObserved").is_some());
}

#[test]
fn check_value_names_the_rule() {
    let c = Catalog::builtin();
    let t = TypeName::new("AirQualityObserved").unwrap();
    assert_eq!(c.check_value(&t, &name("pm25"), Value::Integer(35)), Ok(Value::Number(35.0)));
    let err = c.check_value(&t, &name("pm25"), Value::Number(-1.0)).unwrap_err();
    assert!(matches!(err, Violation::OutOfRange { .. }));
    assert_eq!(err.to_string(), "attribute pm25 value -1 is outside its valid range 0..=1000");
    let err = c.check_value(&t, &name("pm25"), Value::Number(f64::NAN)).unwrap_err();
    assert!(matches!(err, Violation::NotFinite { .. }), "{err}");
    let err = c.check_value(&t, &name("bogus"), Value::Number(1.0)).unwrap_err();
    assert_eq!(err.to_string(), "type AirQualityObserved has no attribute bogus");
    let err = c.check_value(&t, &name("pm25"), Value::Bool(true)).unwrap_err();
    assert_eq!(err.code(), "wrong_kind");
    let unknown = TypeName::new("Unicorn").unwrap();
    assert_eq!(c.check_value(&unknown, &name("x"), Value::Bool(true)), Err(Violation::UnknownType(unknown)));
}

#[test]
fn extra_types_load_and_duplicates_are_refused() {
    let mut c = Catalog::builtin();
    let n = c
        .extend_from_toml(
            "[BeeHive]\ndomain = \"environment\"\n[BeeHive.attributes]\nbees = { kind = \"integer\", min = 0 }\n",
            "extra.toml",
        )
        .unwrap();
    assert_eq!(n, 1);
    assert!(c.get("BeeHive").is_some());
    let err = c.extend_from_toml("[BeeHive]\ndomain = \"x\"\n", "again.toml").unwrap_err();
    assert_eq!(err.to_string(), "catalog again.toml: type BeeHive is already defined");
    let err =
        c.extend_from_toml("[Bad]\ndomain = \"x\"\nattributes = { a = { kind = \"bool\", min = 1 } }\n", "f.toml");
    assert!(matches!(err, Err(CatalogError::BadAttribute { .. })));
    let err = c.extend_from_toml("[Odd]\ndomain = 1\n", "f.toml").unwrap_err();
    assert!(matches!(err, CatalogError::Parse { .. }), "{err}");
}
