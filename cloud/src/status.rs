//! The one place where errors become gRPC statuses. Messages say what to do; internals stay in the log.

use tonic::Status;
use twin_model::{IdError, Violation};
use twin_proto::{ConvertError, pb::RejectCode};
use twin_store::{RejectReason, StoreError};

/// A store error as the status a client sees.
pub fn from_store(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(_) => Status::not_found(e.to_string()),
        StoreError::UnknownAttribute { .. } | StoreError::NotNumeric { .. } => Status::invalid_argument(e.to_string()),
        StoreError::ResumeTooOld { .. } | StoreError::ResumeAhead { .. } => Status::out_of_range(e.to_string()),
        StoreError::Closed | StoreError::Failed => Status::unavailable(e.to_string()),
        StoreError::Sled(_) | StoreError::Io(_) | StoreError::Corrupt { .. } => {
            tracing::error!(error = %e, "storage error while serving a request");
            Status::internal("storage error; the server log has the details")
        }
    }
}

/// A malformed request field.
pub fn from_convert(field: &str, e: ConvertError) -> Status {
    Status::invalid_argument(format!("{field}: {e}"))
}

/// A malformed id or name in a request field.
pub fn from_id(field: &str, e: IdError) -> Status {
    Status::invalid_argument(format!("{field}: {e}"))
}

/// The reject code of a store rejection.
pub fn reject_code(reason: &RejectReason) -> RejectCode {
    match reason {
        RejectReason::UnknownEntity(_) => RejectCode::UnknownEntity,
        RejectReason::TypeChange { .. } => RejectCode::TypeChange,
        RejectReason::InvalidTimestamp { .. } => RejectCode::InvalidTimestamp,
        RejectReason::Catalog { violation, .. } => match violation {
            Violation::UnknownType(_) => RejectCode::UnknownType,
            Violation::UnknownAttribute { .. } => RejectCode::UnknownAttribute,
            Violation::WrongKind { .. } => RejectCode::WrongKind,
            Violation::NotFinite { .. } => RejectCode::NotFinite,
            Violation::OutOfRange { .. } | Violation::TextTooLong { .. } | Violation::NotAllowed { .. } => {
                RejectCode::OutOfRange
            }
            Violation::BadPosition { .. } => RejectCode::InvalidGeometry,
        },
    }
}

/// The rejection of upsert `index` (entity `entity_id`) that does not convert.
pub fn upsert_rejection(index: usize, entity_id: &str, e: &ConvertError) -> twin_proto::pb::Rejection {
    twin_proto::pb::Rejection {
        upsert: true,
        index: index as u32,
        entity_id: entity_id.to_owned(),
        attribute: String::new(),
        code: convert_reject_code(e) as i32,
        message: format!("entity {entity_id:?}: {e}"),
    }
}

/// The reject code of an upsert that does not convert.
fn convert_reject_code(e: &ConvertError) -> RejectCode {
    match e {
        ConvertError::MissingField(_) => RejectCode::MissingField,
        ConvertError::InvalidId { .. } => RejectCode::InvalidId,
        ConvertError::Geometry(_) => RejectCode::InvalidGeometry,
    }
}
