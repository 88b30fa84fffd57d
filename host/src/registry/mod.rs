//! The function registry: functions with their mutable `$LATEST`, immutable
//! numbered versions, and aliases (optionally weighted between two versions).
//!
//! Durable state lives in SQLite (`<data>/registry.db`, WAL, `synchronous =
//! FULL`): every change is one transaction, so an acknowledged change survives
//! `kill -9` and an interrupted one is never half-visible. Code lives beside it
//! in the content-addressed [`code::CodeStore`]. Readers never touch the
//! database: each committed change publishes a new immutable
//! [`RegistryState`] snapshot, which the request path reads without locks.
//!
//! The rules follow Lambda's: publishing unchanged code returns the existing
//! version; version numbers are never reused; an alias names `$LATEST` or a
//! version, with at most one additional version and weight; a version an alias
//! uses cannot be deleted; deleting a function deletes its versions and aliases.

pub mod code;
mod state;
mod store;

pub use state::{
    AliasRecord, DeploymentRecord, FunctionRecord, Qualifier, RegistryState, StageChange, StageRecord, Target,
    VersionRecord, VersionRef, weighted_pick,
};
pub use store::{AliasUpdate, Registry};

/// Errors of the registry, each with the Lambda error type it is reported as.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Something named does not exist (404 `ResourceNotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with existing state (409 `ResourceConflictException`).
    #[error("{0}")]
    Conflict(String),
    /// A parameter is invalid (400 `InvalidParameterValueException`).
    #[error("{0}")]
    InvalidParameter(String),
    /// The database failed.
    #[error("registry database: {0}")]
    Database(String),
    /// The filesystem failed.
    #[error("registry storage: {0}")]
    Io(String),
}

impl From<rusqlite::Error> for RegistryError {
    fn from(e: rusqlite::Error) -> Self {
        RegistryError::Database(e.to_string())
    }
}

/// Checks a function name: letters, digits, `-` and `_`, 1–64 characters.
pub fn validate_function_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidParameter(format!(
            "invalid function name {name:?}: use 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

/// Checks an alias name: letters, digits, `-` and `_`, not all digits, 1–128.
pub fn validate_alias_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidParameter(format!(
            "invalid alias name {name:?}: use 1 to 128 letters, digits, '-' or '_', not only digits"
        )))
    }
}
