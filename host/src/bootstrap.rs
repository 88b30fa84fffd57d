//! Creating the functions `gateway.toml` declares, once.
//!
//! A function is bootstrapped only if it has never been: its code uploaded,
//! version 1 published (with `publish`), its aliases created, then a mark
//! (`bootstrap:<name>`) stored. A restart with the mark present changes
//! nothing, so run-time changes (new code, moved or deleted aliases) are never
//! overwritten. A start interrupted half-way resumes the missing steps.

use crate::config::FunctionSeed;
use crate::functions::{Functions, FunctionsError};

/// Errors of bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("function {function}: could not read its code: {message}")]
    Code { function: String, message: String },
    #[error("function {function}: {source}")]
    Function { function: String, source: FunctionsError },
}

fn mark(name: &str) -> String {
    format!("bootstrap:{name}")
}

/// Bootstraps every seed that was never bootstrapped; returns their names.
pub async fn apply(functions: &Functions, seeds: &[FunctionSeed]) -> Result<Vec<String>, BootstrapError> {
    let mut created = Vec::new();
    for seed in seeds {
        let fail = |source: FunctionsError| BootstrapError::Function { function: seed.name.clone(), source };
        let registry = functions.registry().clone();
        if registry.get_setting(&mark(&seed.name)).map_err(|e| fail(e.into()))?.is_some() {
            continue;
        }
        let existing = registry.snapshot().functions.get(&seed.name).cloned();
        if existing.is_none() {
            // Off the async threads: a source's build takes seconds.
            let source = seed.code.clone();
            let code = tokio::task::spawn_blocking(move || source.read())
                .await
                .map_err(std::io::Error::other)
                .and_then(|read| read)
                .map_err(|e| BootstrapError::Code { function: seed.name.clone(), message: e.to_string() })?;
            functions
                .put_code(&seed.name, code, Some(seed.config.clone()), seed.description.clone())
                .await
                .map_err(fail)?;
        }
        let record = registry.snapshot().function(&seed.name).map_err(|e| fail(e.into()))?.clone();
        if let Some(description) = &seed.publish
            && record.versions.is_empty()
        {
            functions.publish(&seed.name, description.clone(), None).await.map_err(fail)?;
        }
        for (alias, update) in &seed.aliases {
            if !record.aliases.contains_key(alias) {
                functions.put_alias(&seed.name, alias, update.clone(), None).await.map_err(fail)?;
            }
        }
        registry.set_setting(&mark(&seed.name), "done").map_err(|e| fail(e.into()))?;
        tracing::info!(function = %seed.name, "bootstrapped function from the configuration");
        created.push(seed.name.clone());
    }
    Ok(created)
}
