//! The configuration exactly as written (serde), before validation.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub functions: IndexMap<String, Spanned<RawFunction>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub admin_listen: Option<Spanned<String>>,
    pub data_dir: Option<String>,
    pub max_code_mb: Option<Spanned<u64>>,
    pub max_instances: Option<Spanned<u32>>,
    pub max_memory_mb: Option<Spanned<u32>>,
    pub shutdown_grace_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFunction {
    /// A guest of this repository's `guest-functions/` (embedded in the binary).
    pub guest: Option<Spanned<String>>,
    /// A `.wasm` component file, relative to the configuration file.
    pub wasm: Option<Spanned<String>>,
    pub description: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub min_warm: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub idle_ttl: Option<u64>,
    pub reuse: Option<bool>,
    /// Publish version 1 with this description when the function is created.
    pub publish: Option<String>,
    /// Aliases created with the function: `name = "$LATEST"`, `"1"`, or
    /// `{ version = "2", weights = { "1" = 0.1 } }`.
    #[serde(default)]
    pub aliases: IndexMap<String, Spanned<RawAlias>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAlias {
    Version(String),
    Weighted {
        version: String,
        #[serde(default)]
        weights: BTreeMap<String, f64>,
        #[serde(default)]
        description: Option<String>,
    },
}
