//! Deployments: snapshotting an API's definition into a stage, rolling a
//! stage back, and rebuilding what the gateway serves from the registry.
//!
//! A deployment stores the API's definition (TOML text) in the registry; a
//! stage points at one deployment. Loading resolves the definition again
//! (templates, models, routes), cached by deployment id since deployments
//! are immutable. Deploying to `dev` leaves `prod` exactly as it was.

use std::collections::HashMap;
use std::sync::Arc;

use super::stage::CompiledStage;
use super::{Gateway, Served, ServedApi};
use crate::config::{self, ApiSpec, ConfigError};
use crate::registry::{DeploymentRecord, RegistryError, RegistryState, StageRecord};

/// Errors of deploying.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("API {0:?} is not in the configuration")]
    UnknownApi(String),
    #[error("API {api:?} has no stage {stage:?} in the configuration")]
    UnknownStage { api: String, stage: String },
    #[error("deployment {id} of {api}: {message}")]
    Broken { api: String, id: String, message: String },
    /// A function the stage would call does not resolve in the registry:
    /// nothing is deployed.
    #[error("{api} was not deployed to stage {stage}: {}", problems.join("; "))]
    Unresolved { api: String, stage: String, problems: Vec<String> },
}

/// What a deploy did.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The new deployment, or (nothing changed) the one the stage serves.
    pub record: DeploymentRecord,
    /// False when the stage already served this very definition: nothing
    /// was deployed.
    pub deployed: bool,
}

/// The function calls of `stage` of `api` that do not resolve in `state`,
/// each explained: the methods, the stage variables, the registry's answer
/// and, for a function that does not exist, the command that creates it.
/// Calls to a function for which `created_first` holds are left out (a
/// deploy creates it before the stage is served). `deploy` refuses on
/// these; `validate` reports them.
pub fn unresolved_calls(
    api: &ApiSpec,
    stage: &str,
    state: &RegistryState,
    created_first: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    api.function_calls(stage)
        .iter()
        .filter(|call| state.functions.contains_key(call.function()) || !created_first(call.function()))
        .filter_map(|call| {
            let error = state.resolve(&call.qualified).err()?.to_string();
            let error = if state.functions.contains_key(call.function()) {
                error
            } else {
                format!("{error}; create it with `wasmgate function update-code {} --wasm FILE`", call.function())
            };
            Some(call.explain(&error))
        })
        .collect()
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("blocking registry task panicked")
}

impl Gateway {
    /// Deploys `api` (as currently configured) to `stage`, then serves it.
    ///
    /// Refused, with nothing stored, when a function the stage would call
    /// does not resolve in the registry. When the stage already serves this
    /// very definition nothing is deployed either, unless `force`.
    pub async fn deploy(
        &self,
        api: &ApiSpec,
        stage: &str,
        description: &str,
        force: bool,
    ) -> Result<Deployed, DeployError> {
        if !api.stages.contains_key(stage) {
            return Err(DeployError::UnknownStage { api: api.name.clone(), stage: stage.to_string() });
        }
        self.check_function_calls(api, stage)?;
        let text = config::api_snapshot(&api.raw);
        if !force && let Some(current) = self.serving(&api.name, stage).filter(|d| d.definition == text) {
            return Ok(Deployed { record: current, deployed: false });
        }
        // Check the snapshot resolves before storing it.
        config::resolve_api_snapshot(&api.name, &text)?;
        let registry = self.functions.registry().clone();
        let (name, stage_name, description) = (api.name.clone(), stage.to_string(), description.to_string());
        let record = blocking(move || registry.deploy(&name, &stage_name, &text, &description)).await?;
        self.reload()?;
        tracing::info!(api = %api.name, stage, deployment = %record.id, "deployed");
        Ok(Deployed { record, deployed: true })
    }

    /// The deployment `stage` of `api` serves, if any.
    fn serving(&self, api: &str, stage: &str) -> Option<DeploymentRecord> {
        let state = self.functions.registry().snapshot();
        let id = &state.stages.get(&(api.to_string(), stage.to_string()))?.deployment_id;
        state.deployments.get(api)?.iter().find(|d| d.id == *id).cloned()
    }

    /// Every function `stage` of `api` would call must resolve in the
    /// registry now: a stage deployed otherwise answers 500 to every call.
    fn check_function_calls(&self, api: &ApiSpec, stage: &str) -> Result<(), DeployError> {
        // The file's new functions were created before this is asked.
        let problems = unresolved_calls(api, stage, &self.functions.registry().snapshot(), &|_| false);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DeployError::Unresolved { api: api.name.clone(), stage: stage.to_string(), problems })
        }
    }

    /// Points a stage back at an earlier deployment (the previous one, or `to`).
    pub async fn rollback(&self, api: &str, stage: &str, to: Option<String>) -> Result<StageRecord, DeployError> {
        let registry = self.functions.registry().clone();
        let (a, s) = (api.to_string(), stage.to_string());
        let record = blocking(move || registry.rollback(&a, &s, to.as_deref())).await?;
        self.reload()?;
        tracing::info!(api, stage, deployment = %record.deployment_id, "rolled back");
        Ok(record)
    }

    /// Deploys every stage of `apis` that has never been deployed (the first
    /// `serve` of a configuration). Returns (API, stage) pairs deployed.
    pub async fn deploy_undeployed(&self, apis: &[ApiSpec]) -> Result<Vec<(String, String)>, DeployError> {
        let mut done = Vec::new();
        for api in apis {
            for stage in api.stages.keys() {
                let key = (api.name.clone(), stage.clone());
                if !self.functions.registry().snapshot().stages.contains_key(&key) {
                    self.deploy(api, stage, "initial deployment", true).await?;
                    done.push(key);
                }
            }
        }
        Ok(done)
    }

    /// Rebuilds what is served from the registry's stages and swaps it in.
    ///
    /// One reload at a time, each from the registry as it is when it
    /// starts: two deploys (or rollbacks) at once then end with the newer
    /// registry served — without the lock, the reload that read the older
    /// registry could swap last. A deployment that no longer resolves (its
    /// definition written by an older wasmgate, say) is skipped and logged:
    /// the other stages are served, and deploys go on.
    pub fn reload(&self) -> Result<(), DeployError> {
        let _one_at_a_time = self.reloading.lock();
        let state = self.functions.registry().snapshot();
        let mut apis: HashMap<String, ServedApi> = HashMap::new();
        for ((api_name, stage_name), record) in &state.stages {
            let deployments = state.deployments.get(api_name).map(Vec::as_slice).unwrap_or_default();
            let Some(deployment) = deployments.iter().find(|d| d.id == record.deployment_id) else { continue };
            let broken = |e: DeployError| {
                tracing::error!(api = %api_name, stage = %stage_name, error = %e, "stage not served: its deployment does not resolve");
            };
            let spec = match self.resolve_deployment(api_name, deployment) {
                Ok(spec) => spec,
                Err(e) => {
                    broken(e);
                    continue;
                }
            };
            let compiled = match CompiledStage::new(spec.clone(), stage_name, &deployment.id, self) {
                // The deployment was made for a stage this definition no longer has.
                None => continue,
                Some(Err(message)) => {
                    broken(DeployError::Broken { api: api_name.clone(), id: deployment.id.clone(), message });
                    continue;
                }
                Some(Ok(c)) => c,
            };
            // The API's routing (base path, hosts) follows its newest deployment.
            let newest = deployments.last().map(|d| d.id.as_str()) == Some(deployment.id.as_str());
            let entry = apis.entry(api_name.clone()).or_insert_with(|| ServedApi {
                name: api_name.clone(),
                base_path: spec.base_path.clone(),
                hosts: spec.hosts.clone(),
                responses: spec.gateway_responses.clone(),
                stages: foldhash::HashMap::default(),
            });
            if newest {
                entry.base_path = spec.base_path.clone();
                entry.hosts = spec.hosts.clone();
                entry.responses = spec.gateway_responses.clone();
            }
            entry.stages.insert(stage_name.clone(), Arc::new(compiled));
        }
        let mut apis: Vec<ServedApi> = apis.into_values().collect();
        apis.sort_by(|a, b| a.name.cmp(&b.name));
        // What the stages call keeps its warm pools; what they called before
        // and nothing else does lets its pools go.
        let targets = apis.iter().flat_map(|a| a.stages.values()).flat_map(|s| s.function_targets.iter().cloned());
        self.functions.set_stage_targets(targets.collect());
        self.served.store(Arc::new(Served { apis }));
        Ok(())
    }

    fn resolve_deployment(&self, api: &str, d: &DeploymentRecord) -> Result<Arc<ApiSpec>, DeployError> {
        if let Some(spec) = self.compiled.lock().get(&d.id) {
            return Ok(spec.clone());
        }
        let spec = config::resolve_api_snapshot(api, &d.definition).map_err(|e| DeployError::Broken {
            api: api.to_string(),
            id: d.id.clone(),
            message: e.to_string(),
        })?;
        let spec = Arc::new(spec);
        self.compiled.lock().insert(d.id.clone(), spec.clone());
        Ok(spec)
    }
}
