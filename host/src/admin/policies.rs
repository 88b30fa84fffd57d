//! The admin API's usage plans, API keys, usage reports and stage caches
//! (the endpoints are listed in the table of [`super`]).
//!
//! Errors here are API Gateway's: 400 `BadRequestException`, 404
//! `NotFoundException`, 409 `ConflictException`, 500 `ServiceException`.
//!
//! A key's value leaves the server twice only: in the answer that creates
//! the key and in the one that rotates it. Everything else shows the key
//! masked (`abcd************…`), never its value or its digest.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{AdminApi, ApiError, ApiResult, ok, parse_json, query_param};
use crate::http;
use crate::policy::catalog::{self, ApiKey, ApiStage, CatalogError, Quota, UsagePlan};
use crate::policy::clock::{self, Period};
use crate::policy::store::Throttle;
use crate::policy::{Policies, UsageError};

/// The largest JSON body these endpoints take.
const MAX_BODY: usize = 1 << 20;

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, "BadRequestException", message.into())
    }
    fn missing(message: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, "NotFoundException", message.into())
    }
    fn conflict(message: impl Into<String>) -> Self {
        ApiError(StatusCode::CONFLICT, "ConflictException", message.into())
    }
    fn service(message: impl Into<String>) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", message.into())
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound(m) => ApiError::missing(m),
            CatalogError::Conflict(m) => ApiError::conflict(m),
            CatalogError::Invalid(m) => ApiError::bad(m),
            e @ CatalogError::Database(_) => ApiError::service(e.to_string()),
        }
    }
}

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::NotFound(m) => ApiError::missing(m),
            UsageError::Invalid(m) => ApiError::bad(m),
            UsageError::Store(e) => ApiError::service(format!("policy store: {e}")),
        }
    }
}

/// A JSON body of these endpoints (a bad one is a `BadRequestException`).
async fn body<T: serde::de::DeserializeOwned>(req: Request<http::RequestBody>) -> Result<T, ApiError> {
    let bytes = http::read_body(req.into_body(), MAX_BODY).await?;
    parse_json(&bytes).map_err(|ApiError(_, _, message)| ApiError::bad(message))
}

fn no_content() -> ApiResult {
    Ok(http::response(StatusCode::NO_CONTENT, "application/json", Bytes::new()))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent
/// (with `#[serde(default)]`): "remove" and "leave as it is" told apart.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A quota as the API takes it: the period in any case (`"day"`, `"DAY"`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    limit: u64,
    #[serde(default)]
    offset: u64,
    period: String,
}

impl QuotaBody {
    fn into_quota(self) -> Result<Quota, ApiError> {
        let period = Period::parse(&self.period)
            .ok_or_else(|| ApiError::bad(format!("quota period {:?}: use DAY, WEEK or MONTH", self.period)))?;
        let quota = Quota { limit: self.limit, offset: self.offset, period };
        quota.check().map_err(ApiError::bad)?;
        Ok(quota)
    }
}

/// `"API/stage"` → `"/resource/METHOD"` → throttle.
type MethodThrottles = BTreeMap<String, BTreeMap<String, Throttle>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    stages: Vec<String>,
    #[serde(default)]
    throttle: Option<Throttle>,
    #[serde(default)]
    quota: Option<QuotaBody>,
    #[serde(default)]
    method_throttle: MethodThrottles,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanPatch {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    add_stages: Vec<String>,
    #[serde(default)]
    remove_stages: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    throttle: Option<Option<Throttle>>,
    #[serde(default, deserialize_with = "nullable")]
    quota: Option<Option<QuotaBody>>,
    /// Replaces the method throttles of each stage named (`{}` clears them).
    #[serde(default)]
    method_throttle: MethodThrottles,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    plans: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    invalidate_cache: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPatch {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    add_plans: Vec<String>,
    #[serde(default)]
    remove_plans: Vec<String>,
    #[serde(default)]
    invalidate_cache: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    value: Option<String>,
}

fn parse_stages(stages: &[String]) -> Result<Vec<ApiStage>, ApiError> {
    stages.iter().map(|s| ApiStage::parse(s).map_err(ApiError::bad)).collect()
}

/// Sets the method throttles of `stages` from `throttles`, each of whose
/// stages must be among them.
fn apply_method_throttles(stages: &mut [ApiStage], throttles: MethodThrottles) -> Result<(), String> {
    for (label, methods) in throttles {
        let stage = stages
            .iter_mut()
            .find(|s| s.label() == label)
            .ok_or_else(|| format!("method_throttle names stage {label:?}, which is not one of the plan's stages"))?;
        stage.method_throttle = methods;
    }
    Ok(())
}

/// A plan as the API shows it: its stages as `"API/stage"`, their method
/// throttles apart (the shape a plan is created with), and the keys in it.
fn plan_view(plan: &UsagePlan, keys: &BTreeMap<String, Arc<ApiKey>>) -> Value {
    let method_throttle: BTreeMap<String, &BTreeMap<String, Throttle>> =
        plan.stages.iter().filter(|s| !s.method_throttle.is_empty()).map(|s| (s.label(), &s.method_throttle)).collect();
    let in_plan: Vec<&str> = keys.values().filter(|k| k.plans.contains(&plan.name)).map(|k| k.name.as_str()).collect();
    json!({
        "name": plan.name,
        "description": plan.description,
        "stages": plan.stages.iter().map(ApiStage::label).collect::<Vec<_>>(),
        "throttle": plan.throttle,
        "quota": plan.quota,
        "method_throttle": method_throttle,
        "keys": in_plan,
        "created": plan.created,
        "source": plan.source,
    })
}

/// A key as the API shows it: masked, never its value nor its digest.
fn key_view(key: &ApiKey) -> Value {
    json!({
        "name": key.name,
        "id": key.id,
        "description": key.description,
        "enabled": key.enabled,
        "plans": key.plans,
        "masked_value": key.masked(),
        "invalidate_cache": key.invalidate_cache,
        "created": key.created,
        "source": key.source,
    })
}

/// A key with its value: the answers of create and rotate only.
fn key_with_value(key: &ApiKey, value: String) -> Value {
    let mut view = key_view(key);
    view["value"] = Value::String(value);
    view
}

/// `names` as a list for a message: `"a", "b"`.
fn quoted(names: &BTreeSet<&str>) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

impl AdminApi {
    fn policies(&self) -> &Arc<Policies> {
        self.gateway.policies()
    }

    /// Runs a catalog change (SQLite, synced to disk) off the async threads.
    async fn catalog<T: Send + 'static>(
        &self,
        change: impl FnOnce(&Policies) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let policies = self.policies().clone();
        tokio::task::spawn_blocking(move || change(&policies))
            .await
            .map_err(|e| ApiError::service(format!("catalog task: {e}")))?
    }

    /// The status's `policies`: the store's kind and each stage's cache counters.
    pub(super) fn policies_status(&self) -> Value {
        let policies = self.policies();
        json!({ "store": policies.store().kind(), "cache": policies.cache_report() })
    }

    /// `/v1/usageplans…`, `/v1/apikeys…` and `/v1/apis/{api}/stages/{stage}/cache`.
    pub(super) async fn route_policies(
        &self,
        method: &Method,
        segs: &[&str],
        req: Request<http::RequestBody>,
    ) -> ApiResult {
        let name = |s: &str| s.to_string();
        match (method, segs) {
            (&Method::GET, ["v1", "usageplans"]) => self.list_plans(),
            (&Method::POST, ["v1", "usageplans"]) => self.create_plan(req).await,
            (&Method::GET, ["v1", "usageplans", plan]) => self.get_plan(plan),
            (&Method::PATCH, ["v1", "usageplans", plan]) => self.update_plan(name(plan), req).await,
            (&Method::DELETE, ["v1", "usageplans", plan]) => self.delete_plan(name(plan)).await,
            (&Method::GET, ["v1", "usageplans", plan, "usage"]) => self.usage(plan, &req).await,
            (&Method::GET, ["v1", "apikeys"]) => self.list_keys(),
            (&Method::POST, ["v1", "apikeys"]) => self.create_key(req).await,
            (&Method::GET, ["v1", "apikeys", key]) => self.get_key(key),
            (&Method::PATCH, ["v1", "apikeys", key]) => self.update_key(name(key), req).await,
            (&Method::DELETE, ["v1", "apikeys", key]) => self.delete_key(name(key)).await,
            (&Method::POST, ["v1", "apikeys", key, "rotate"]) => self.rotate_key(name(key), req).await,
            (&Method::DELETE, ["v1", "apis", api, "stages", stage, "cache"]) => self.flush_cache(api, stage).await,
            _ => Err(ApiError(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("no admin operation {method} {}", req.uri().path()),
            )),
        }
    }

    fn list_plans(&self) -> ApiResult {
        let snapshot = self.policies().catalog().snapshot();
        let plans: Vec<Value> = snapshot.plans.values().map(|p| plan_view(p, &snapshot.keys)).collect();
        ok(&json!({ "usage_plans": plans }))
    }

    fn get_plan(&self, name: &str) -> ApiResult {
        let snapshot = self.policies().catalog().snapshot();
        let plan =
            snapshot.plans.get(name).ok_or_else(|| ApiError::missing(catalog::no_plan(name, snapshot.plans.keys())))?;
        ok(&plan_view(plan, &snapshot.keys))
    }

    /// Refuses stages the gateway does not serve, as API Gateway refuses
    /// an API stage that does not exist.
    fn check_served(&self, plan: &str, stages: &[ApiStage]) -> Result<(), ApiError> {
        let served = self.gateway.served();
        for s in stages {
            let found = served.apis.iter().any(|a| a.name == s.api && a.stages.contains_key(&s.stage));
            if !found {
                return Err(ApiError::missing(format!(
                    "Invalid API Stage {{api: {}, stage: {}}} specified for usageplan {plan}: no such stage is deployed",
                    s.api, s.stage
                )));
            }
        }
        Ok(())
    }

    async fn create_plan(&self, req: Request<http::RequestBody>) -> ApiResult {
        let b: PlanBody = body(req).await?;
        let mut stages = parse_stages(&b.stages)?;
        self.check_served(&b.name, &stages)?;
        apply_method_throttles(&mut stages, b.method_throttle).map_err(ApiError::bad)?;
        let quota = b.quota.map(QuotaBody::into_quota).transpose()?;
        let plan = self
            .catalog(move |p| Ok(p.catalog().create_plan(&b.name, b.description, stages, b.throttle, quota)?))
            .await?;
        let snapshot = self.policies().catalog().snapshot();
        Ok(http::json(StatusCode::CREATED, &plan_view(&plan, &snapshot.keys)))
    }

    async fn update_plan(&self, name: String, req: Request<http::RequestBody>) -> ApiResult {
        let patch: PlanPatch = body(req).await?;
        let add = parse_stages(&patch.add_stages)?;
        self.check_served(&name, &add)?;
        let remove = parse_stages(&patch.remove_stages)?;
        let quota = match patch.quota {
            None => None,
            Some(None) => Some(None),
            Some(Some(q)) => Some(Some(q.into_quota()?)),
        };
        let (throttle, description, method_throttle) = (patch.throttle, patch.description, patch.method_throttle);
        let plan = self
            .catalog(move |p| {
                let plan = p.catalog().update_plan(&name, |plan| {
                    let mut changed = plan.clone();
                    let unbound: Vec<String> = remove
                        .iter()
                        .filter(|r| !plan.stages.iter().any(|s| s.label() == r.label()))
                        .map(ApiStage::label)
                        .collect();
                    if !unbound.is_empty() {
                        return Err(CatalogError::Invalid(format!(
                            "usage plan {name:?} is not bound to {}",
                            unbound.join(", ")
                        )));
                    }
                    changed.stages.retain(|s| !remove.iter().any(|r| r.label() == s.label()));
                    changed.stages.extend(add);
                    apply_method_throttles(&mut changed.stages, method_throttle).map_err(CatalogError::Invalid)?;
                    if let Some(t) = throttle {
                        changed.throttle = t;
                    }
                    if let Some(q) = quota {
                        changed.quota = q;
                    }
                    if let Some(d) = description {
                        changed.description = d;
                    }
                    *plan = changed;
                    Ok(())
                })?;
                Ok(plan)
            })
            .await?;
        let snapshot = self.policies().catalog().snapshot();
        ok(&plan_view(&plan, &snapshot.keys))
    }

    async fn delete_plan(&self, name: String) -> ApiResult {
        self.catalog(move |p| Ok(p.catalog().delete_plan(&name)?)).await?;
        no_content()
    }

    /// GetUsage: `startDate` and `endDate` default to the seven days
    /// through today (UTC).
    async fn usage(&self, plan: &str, req: &Request<http::RequestBody>) -> ApiResult {
        let day = |param: &str| -> Result<Option<i64>, ApiError> {
            match query_param(req, param) {
                None => Ok(None),
                Some(text) => clock::parse_day(&text)
                    .map(Some)
                    .ok_or_else(|| ApiError::bad(format!("{param} {text:?}: use a date as YYYY-MM-DD"))),
            }
        };
        let (from, to) = match (day("startDate")?, day("endDate")?) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, self.policies().clock().today()),
            (None, Some(to)) => (to - 6, to),
            (None, None) => {
                let today = self.policies().clock().today();
                (today - 6, today)
            }
        };
        let key = query_param(req, "key");
        ok(&self.policies().usage(plan, key.as_deref(), from, to).await?)
    }

    fn list_keys(&self) -> ApiResult {
        let snapshot = self.policies().catalog().snapshot();
        let keys: Vec<Value> = snapshot.keys.values().map(|k| key_view(k)).collect();
        ok(&json!({ "api_keys": keys }))
    }

    fn get_key(&self, name: &str) -> ApiResult {
        let snapshot = self.policies().catalog().snapshot();
        let key =
            snapshot.keys.get(name).ok_or_else(|| ApiError::missing(catalog::no_key(name, snapshot.keys.keys())))?;
        ok(&key_view(key))
    }

    async fn create_key(&self, req: Request<http::RequestBody>) -> ApiResult {
        let b: KeyBody = body(req).await?;
        let (key, value) = self
            .catalog(move |p| {
                let enabled = b.enabled.unwrap_or(true);
                Ok(p.catalog().create_key(&b.name, b.value, b.plans, b.description, enabled, b.invalidate_cache)?)
            })
            .await?;
        Ok(http::json(StatusCode::CREATED, &key_with_value(&key, value)))
    }

    async fn update_key(&self, name: String, req: Request<http::RequestBody>) -> ApiResult {
        let patch: KeyPatch = body(req).await?;
        let key = self
            .catalog(move |p| {
                let key = p.catalog().update_key(&name, |key| {
                    let absent: BTreeSet<&str> =
                        patch.remove_plans.iter().filter(|r| !key.plans.contains(r)).map(String::as_str).collect();
                    if !absent.is_empty() {
                        return Err(CatalogError::Invalid(format!(
                            "API key {name:?} is not in usage plan {}",
                            quoted(&absent)
                        )));
                    }
                    let already: BTreeSet<&str> = patch
                        .add_plans
                        .iter()
                        .filter(|a| key.plans.contains(a) && !patch.remove_plans.contains(a))
                        .map(String::as_str)
                        .collect();
                    if !already.is_empty() {
                        return Err(CatalogError::Conflict(format!(
                            "API key {name:?} is already in usage plan {}",
                            quoted(&already)
                        )));
                    }
                    key.plans.retain(|p| !patch.remove_plans.contains(p));
                    for plan in &patch.add_plans {
                        if !key.plans.contains(plan) {
                            key.plans.push(plan.clone());
                        }
                    }
                    if let Some(e) = patch.enabled {
                        key.enabled = e;
                    }
                    if let Some(d) = &patch.description {
                        key.description = d.clone();
                    }
                    if let Some(i) = patch.invalidate_cache {
                        key.invalidate_cache = i;
                    }
                    Ok(())
                })?;
                Ok(key)
            })
            .await?;
        ok(&key_view(&key))
    }

    async fn rotate_key(&self, name: String, req: Request<http::RequestBody>) -> ApiResult {
        let b: RotateBody = body(req).await?;
        let (key, value) = self.catalog(move |p| Ok(p.catalog().rotate_key(&name, b.value)?)).await?;
        ok(&key_with_value(&key, value))
    }

    async fn delete_key(&self, name: String) -> ApiResult {
        self.catalog(move |p| Ok(p.catalog().delete_key(&name)?)).await?;
        no_content()
    }

    /// FlushStageCache: every cached response of a served stage.
    async fn flush_cache(&self, api: &str, stage: &str) -> ApiResult {
        let served = self.gateway.served();
        let served_api =
            served.api(api).map_err(|e| ApiError::missing(format!("Invalid API identifier specified: {e}")))?;
        served_api.stage(stage).map_err(|e| ApiError::missing(format!("Invalid stage identifier specified: {e}")))?;
        self.policies()
            .flush(&format!("{api}/{stage}"))
            .await
            .map_err(|e| ApiError::service(format!("could not flush the cache of {api}/{stage}: {e}")))?;
        no_content()
    }
}
