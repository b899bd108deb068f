//! The City Twin wire API (package `twin.v1`), generated from `proto/twin/v1` at build time, plus the
//! conversions between wire messages and the domain types of `twin-model`.
//!
//! - [`pb`]: the generated messages, clients and servers.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection.
//! - [`convert`]: `TryFrom` wire -> model (validating, with [`ConvertError`]) and model -> wire.

pub mod convert;

pub use convert::ConvertError;

/// Generated code for `twin.v1`.
#[allow(missing_docs, missing_debug_implementations, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/twin.v1.rs"));
}

/// The encoded `FileDescriptorSet` of the twin.v1 protos, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/twin_descriptor.bin"));
