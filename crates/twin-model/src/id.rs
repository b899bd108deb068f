//! Validated identifiers. Each is a cheap-to-clone `Arc<str>` checked once at the boundary.

use std::{borrow::Borrow, fmt, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is empty.
    #[error("{what} is empty")]
    Empty {
        /// Which kind of identifier.
        what: &'static str,
    },
    /// The identifier is longer than allowed.
    #[error("{what} is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Which kind of identifier.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The identifier holds a character that is not allowed.
    #[error("{what} has a character not allowed at byte {position} ({found:?}); allowed: {allowed}")]
    BadCharacter {
        /// Which kind of identifier.
        what: &'static str,
        /// Byte offset of the first bad character.
        position: usize,
        /// The character found.
        found: char,
        /// The allowed characters, in words.
        allowed: &'static str,
    },
}

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $allowed:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates `s` and wraps it.
            pub fn new(s: &str) -> Result<Self, IdError> {
                validate(s, $what, $max, $allowed, $check)?;
                Ok(Self(Arc::from(s)))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn validate(
    s: &str,
    what: &'static str,
    max: usize,
    allowed: &'static str,
    ok: fn(usize, u8) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > max {
        return Err(IdError::TooLong { what, len: s.len(), max });
    }
    if let Some((position, found)) = s.char_indices().find(|&(i, c)| !c.is_ascii() || !ok(i, c as u8)) {
        return Err(IdError::BadCharacter { what, position, found, allowed });
    }
    Ok(())
}

fn printable_ascii(_: usize, b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

fn identifier(i: usize, b: u8) -> bool {
    b.is_ascii_alphabetic() || (i > 0 && (b.is_ascii_digit() || b == b'_'))
}

fn edge_chars(_: usize, b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
}

validated_name!(
    /// An entity id: 1 to 256 bytes of printable ASCII without spaces, by convention an NGSI-LD URN
    /// such as `urn:ngsi-ld:AirQualityObserved:changsha:yuelu:0042`.
    EntityId, "entity id", 256, "printable ASCII without spaces (0x21-0x7e)", printable_ascii
);
validated_name!(
    /// An attribute name: a letter, then letters, digits or `_`; at most 64 bytes (e.g. `pm25`, `intensity`).
    AttrName, "attribute name", 64, "a letter, then letters, digits or '_'", identifier
);
validated_name!(
    /// An entity type name from the catalog, e.g. `AirQualityObserved`; same rules as [`AttrName`].
    TypeName, "entity type", 64, "a letter, then letters, digits or '_'", identifier
);
validated_name!(
    /// The id an edge box uses for itself: letters, digits, `-`, `_`, `.`, `:`; at most 128 bytes.
    EdgeId, "edge id", 128, "letters, digits, '-', '_', '.', ':'", edge_chars
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ngsi_urn() {
        let id = EntityId::new("urn:ngsi-ld:AirQualityObserved:changsha:yuelu:0042").unwrap();
        assert_eq!(id.as_str(), "urn:ngsi-ld:AirQualityObserved:changsha:yuelu:0042");
    }

    #[test]
    fn rejects_bad_ids_with_reason() {
        assert_eq!(EntityId::new(""), Err(IdError::Empty { what: "entity id" }));
        let long = "x".repeat(257);
        assert!(matches!(EntityId::new(&long), Err(IdError::TooLong { len: 257, max: 256, .. })));
        let err = EntityId::new("urn:a b").unwrap_err();
        assert!(matches!(err, IdError::BadCharacter { position: 5, found: ' ', .. }), "{err}");
        assert!(EntityId::new("urn:\u{e9}").is_err());
        assert!(EntityId::new("urn:\n").is_err());
        assert!(EntityId::new(&"x".repeat(256)).is_ok());
    }

    #[test]
    fn attribute_names_are_identifiers() {
        assert!(AttrName::new("pm25").is_ok());
        assert!(AttrName::new("no_2").is_ok());
        assert!(AttrName::new("2pm").is_err());
        assert!(AttrName::new("pm-25").is_err());
        assert!(EdgeId::new("edge-yuelu.01").is_ok());
        assert!(EdgeId::new("edge/yuelu").is_err());
    }
}
