//! `gateway.toml`: parsed strictly ([`raw`], every table denies unknown keys),
//! then validated and resolved ([`Config`]) — relative paths made absolute,
//! guests and files checked, aliases checked against what bootstrap will
//! publish. Every error names the file, the line and the key. The rest of the
//! program only sees the resolved form.

mod raw;
mod resolve;

use std::path::{Path, PathBuf};

pub use resolve::{CodeSource, Config, FunctionSeed, ServerConfig};

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read {path}: {message}")]
    Read { path: PathBuf, message: String },
    /// A syntax error, an unknown key or a value of the wrong type (toml's
    /// message shows the line, the column and the key).
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value that parses but cannot be used.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid { path: PathBuf, line: usize, key: String, message: String },
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    parse(&text, path)
}

/// Validates configuration text; `path` is used for messages and to resolve
/// relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: raw::RawConfig = toml::from_str(text)
        .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string().trim_end().to_string() })?;
    resolve::resolve(raw, text, path)
}

/// The 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}
