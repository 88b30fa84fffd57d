//! A deployed stage, compiled for serving: the deployment's API (templates
//! parsed, models compiled), its router, the stage's variables, and each
//! function integration's qualifier with the stage variables substituted,
//! and the stable ids `$context` shows (`apiId`, `resourceId`).
//! Built once per deploy; requests only read it.

use std::sync::Arc;

use indexmap::IndexMap;

use super::router::Router;
use crate::access_log::{AccessLogs, StageAccessLog};
use crate::config::ApiSpec;
use crate::config::api::{IntegrationKind, MethodSpec, substitute_stage_variables};
use crate::functions::FunctionTarget;
use crate::metrics::{ApiMethodMetrics, Metrics};
use crate::policy::settings::{CacheStats, MethodPolicy};

/// What a compiled stage takes from the server it is served by: what it
/// counts into, kept across deploys (a redeployed stage goes on counting
/// where the one before it stopped).
pub trait StageServices {
    /// A stage's cache counters (`"api/stage"`).
    fn cache_stats(&self, stage: &str) -> Arc<CacheStats>;
    fn metrics(&self) -> &Metrics;
    /// The server's access-log files.
    fn access_logs(&self) -> &AccessLogs;
}

/// Services for a stage that no server serves (tests, benchmarks): its
/// counts go nowhere anyone reads; access-log files named by a relative
/// path are in the system's temporary directory.
pub struct Unserved(Metrics, AccessLogs);

impl Default for Unserved {
    fn default() -> Self {
        Unserved(Metrics::new(), AccessLogs::new(std::env::temp_dir(), Arc::default()))
    }
}

impl StageServices for Unserved {
    fn cache_stats(&self, _: &str) -> Arc<CacheStats> {
        Arc::default()
    }

    fn metrics(&self) -> &Metrics {
        &self.0
    }

    fn access_logs(&self) -> &AccessLogs {
        &self.1
    }
}

/// A method as a stage serves it.
#[derive(Debug)]
pub struct MethodEntry {
    pub spec: Arc<MethodSpec>,
    /// The function this stage calls (`ItemsFunction:dev`), resolved once
    /// per registry change.
    pub function: Option<FunctionTarget>,
    /// `$context.resourceId`.
    pub resource_id: String,
    /// The stage's policies for this method: API key, throttle, cache, CORS.
    pub policy: MethodPolicy,
    /// For a CORS preflight method: the resource's methods it announces.
    pub cors_methods: Vec<String>,
    /// Where its requests are counted.
    pub metrics: ApiMethodMetrics,
}

/// One stage of one API, serving one deployment.
pub struct CompiledStage {
    pub api: Arc<ApiSpec>,
    /// `$context.apiId`.
    pub api_id: String,
    pub stage: String,
    pub deployment_id: String,
    pub variables: IndexMap<String, String>,
    pub router: Router<MethodEntry>,
    /// The function qualifiers its methods call, stage variables substituted.
    pub function_targets: Vec<String>,
    /// Where its requests that match no method are counted.
    pub unmatched: ApiMethodMetrics,
    /// Its access log, if it keeps one.
    pub access_log: Option<StageAccessLog>,
}

impl CompiledStage {
    /// Compiles `stage` of a deployed API. `None` if the deployment does not
    /// define that stage.
    pub fn new(
        api: Arc<ApiSpec>,
        stage: &str,
        deployment_id: &str,
        services: &dyn StageServices,
    ) -> Option<Result<CompiledStage, String>> {
        let spec = api.stages.get(stage)?;
        let variables = spec.variables.clone();
        let label = format!("{}/{stage}", api.name);
        let mut function_targets = Vec::new();
        let routes = api.methods.iter().map(|m| {
            let function = match &m.integration.kind {
                IntegrationKind::Function { function } | IntegrationKind::FunctionProxy { function } => {
                    let qualified = substitute_stage_variables(function, &variables);
                    function_targets.push(qualified.clone());
                    Some(FunctionTarget::new(qualified))
                }
                IntegrationKind::Mock => None,
            };
            let cors = api.cors.get(&m.resource_path).cloned();
            let policy = MethodPolicy::new(
                &api.name,
                stage,
                &m.resource_path,
                &m.http_method,
                m.api_key_required,
                &spec.settings,
                &m.cache_key_parameters,
                cors,
                || services.cache_stats(&label),
            );
            let cors_methods = if m.cors_preflight { resource_methods(&api, &m.resource_path) } else { Vec::new() };
            let entry = MethodEntry {
                spec: m.clone(),
                function,
                resource_id: short_id(&m.resource_path),
                policy,
                cors_methods,
                metrics: services.metrics().api_method(&api.name, stage, &m.resource_path, &m.http_method),
            };
            (m.resource_path.clone(), m.http_method.clone(), entry)
        });
        let router = Router::new(routes);
        function_targets.sort();
        function_targets.dedup();
        Some(match router {
            Ok(router) => Ok(CompiledStage {
                api_id: short_id(&api.name),
                api: api.clone(),
                stage: stage.to_string(),
                deployment_id: deployment_id.to_string(),
                variables,
                router,
                function_targets,
                unmatched: services.metrics().api_unmatched(&api.name, stage),
                access_log: spec.access_log.as_ref().map(|a| services.access_logs().for_stage(&label, a)),
            }),
            Err(e) => Err(e.to_string()),
        })
    }
}

/// The methods a resource answers, for a preflight's
/// `Access-Control-Allow-Methods` (`ANY` spelled out), OPTIONS included.
fn resource_methods(api: &ApiSpec, path: &str) -> Vec<String> {
    let mut methods: Vec<String> = Vec::new();
    for m in api.methods.iter().filter(|m| m.resource_path == path) {
        if m.http_method == "ANY" {
            methods.extend(["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"].map(String::from));
        } else {
            methods.push(m.http_method.clone());
        }
    }
    methods.sort();
    methods.dedup();
    methods
}

/// Stable short ids derived from names, standing in for API Gateway's ids.
pub fn short_id(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let mut n = h.finish();
    (0..10)
        .map(|_| {
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}
