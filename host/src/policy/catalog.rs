//! Usage plans and API keys: what they are, the rules that bind them, where
//! they are kept, and the snapshot requests read.
//!
//! Two sources, one catalog: plans and keys declared in `gateway.toml`
//! (`[usage_plans.NAME]`, `[api_keys.NAME]`: the way several nodes get the
//! same ones; read-only at run time) and those created with the CLI or the
//! admin API, kept in `<data>/policies.db` (SQLite). A name is one or the
//! other: the CLI refuses to create or change what the file declares.
//!
//! A key's value is never stored: only its SHA-256 digest (and, for keys
//! made here, its first four characters, to tell keys apart in a list).
//! A request's key is hashed and looked up by digest, and the stored digest
//! compared in constant time. A key made here is counted under a random
//! `usage_id` of its own, which a rotation keeps (rotating a key does not
//! give it a fresh quota); a key declared in the file is counted under the
//! digest of its value, and its public id is derived from its name — the
//! same on every node.
//!
//! Rules, as API Gateway's: a key value has 20–128 letters and digits and is
//! unique; a key may be in several plans, but in only one plan per stage; a
//! plan bound to a stage cannot be deleted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::clock::{Clock, Period};
use super::store::{Bucket, Throttle};

/// A quota: `limit` requests per `period`, less `offset` in the first period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub limit: u64,
    #[serde(default)]
    pub offset: u64,
    pub period: Period,
}

impl Quota {
    pub fn check(&self) -> Result<(), String> {
        if self.limit == 0 {
            return Err("a quota's limit must be at least 1".into());
        }
        if self.offset >= self.limit {
            return Err(format!("the offset ({}) must be below the limit ({})", self.offset, self.limit));
        }
        Ok(())
    }

    /// `"1000/DAY"`.
    pub fn parse(text: &str) -> Result<Quota, String> {
        let (limit, period) =
            text.split_once('/').ok_or_else(|| format!("{text:?}: use LIMIT/PERIOD, e.g. 1000/DAY"))?;
        let limit = limit.trim().parse().map_err(|_| format!("{text:?}: the limit is a whole number"))?;
        let period =
            Period::parse(period.trim()).ok_or_else(|| format!("{text:?}: the period is DAY, WEEK or MONTH"))?;
        let quota = Quota { limit, offset: 0, period };
        quota.check()?;
        Ok(quota)
    }
}

/// A stage a plan applies to, with per-method throttles (`"/items/GET"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiStage {
    pub api: String,
    pub stage: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub method_throttle: BTreeMap<String, Throttle>,
}

impl ApiStage {
    /// `"ItemsAPI/prod"`.
    pub fn parse(text: &str) -> Result<ApiStage, String> {
        match text.split_once('/') {
            Some((api, stage)) if !api.is_empty() && !stage.is_empty() && !stage.contains('/') => {
                Ok(ApiStage { api: api.to_string(), stage: stage.to_string(), method_throttle: BTreeMap::new() })
            }
            _ => Err(format!("{text:?}: name a stage as API/STAGE, e.g. ItemsAPI/prod")),
        }
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.api, self.stage)
    }
}

/// Where a plan or key was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `gateway.toml`: read-only at run time.
    File,
    /// The CLI or the admin API.
    Api,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsagePlan {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub stages: Vec<ApiStage>,
    #[serde(default)]
    pub throttle: Option<Throttle>,
    #[serde(default)]
    pub quota: Option<Quota>,
    /// When the plan was created (RFC 3339): its quota's `offset` applies
    /// to the period that contains this day.
    pub created: String,
    pub created_day: i64,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    /// A short public id (`$context.identity.apiKeyId`).
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    /// Hex SHA-256 of the value.
    pub sha256: String,
    /// What usage is counted under: random for a key made here, the
    /// value's digest for one declared in the file.
    pub usage_id: String,
    /// The value's first characters (keys made here), for lists.
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub plans: Vec<String>,
    /// May send `Cache-Control: max-age=0` to refresh a cached response
    /// (API Gateway's `execute-api:InvalidateCache` permission).
    #[serde(default)]
    pub invalidate_cache: bool,
    pub created: String,
    pub source: Source,
}

impl ApiKey {
    /// The value as a list shows it: `abcd…` or `…` for a declared key.
    pub fn masked(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{p}************************************"),
            None => "****************************************".into(),
        }
    }
}

/// What is wrong with a catalog change.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("policy database: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for CatalogError {
    fn from(e: rusqlite::Error) -> Self {
        CatalogError::Database(e.to_string())
    }
}

/// A key's grant on one stage: the plan that binds it there.
#[derive(Debug)]
pub struct Grant {
    pub key: Arc<ApiKey>,
    pub plan: Arc<UsagePlan>,
    /// `plan \0 usage_id`: the name of the key's quota counter.
    pub counter: String,
    /// The key's bucket in the plan (named as its counter), if the plan
    /// throttles.
    pub bucket: Option<Bucket>,
    /// Method throttles of this stage in the plan, each its own bucket.
    pub method_throttle: foldhash::HashMap<String, Bucket>,
}

/// What requests read: keys by digest, each with its grants by stage.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub plans: BTreeMap<String, Arc<UsagePlan>>,
    pub keys: BTreeMap<String, Arc<ApiKey>>,
    /// Keys by the first 8 bytes of their digest (a lookup must not
    /// compare whole digests in variable time; these bytes reveal nothing
    /// of a key), each compared whole in constant time.
    by_prefix: foldhash::HashMap<u64, Vec<KeyEntry>>,
}

#[derive(Debug)]
struct KeyEntry {
    /// The key's SHA-256, as four words for the constant-time comparison.
    digest: [u64; 4],
    key: Arc<ApiKey>,
    /// `"api/stage"` → grant.
    grants: foldhash::HashMap<String, Arc<Grant>>,
}

/// Why a request's key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Missing,
    Unknown,
    Disabled,
    NotForStage,
}

impl Snapshot {
    fn build(plans: BTreeMap<String, Arc<UsagePlan>>, keys: BTreeMap<String, Arc<ApiKey>>) -> Snapshot {
        let mut by_prefix: foldhash::HashMap<u64, Vec<KeyEntry>> = foldhash::HashMap::default();
        for key in keys.values() {
            let Some(digest) = parse_digest(&key.sha256) else { continue };
            let mut grants = foldhash::HashMap::default();
            for plan in key.plans.iter().filter_map(|p| plans.get(p)) {
                let counter = format!("{}\0{}", plan.name, key.usage_id);
                for stage in &plan.stages {
                    let method_throttle = stage
                        .method_throttle
                        .iter()
                        .map(|(m, t)| (m.clone(), Bucket::new(format!("{counter}\0{}\0{m}", stage.label()), *t)))
                        .collect();
                    let grant = Grant {
                        key: key.clone(),
                        plan: plan.clone(),
                        counter: counter.clone(),
                        bucket: plan.throttle.map(|t| Bucket::new(counter.clone(), t)),
                        method_throttle,
                    };
                    grants.insert(stage.label(), Arc::new(grant));
                }
            }
            let digest = digest_words(&digest);
            by_prefix.entry(digest[0]).or_default().push(KeyEntry { digest, key: key.clone(), grants });
        }
        Snapshot { plans, keys, by_prefix }
    }

    /// The grant of the key `value` on `stage` (`"api/stage"`).
    pub fn authorize(&self, value: Option<&str>, stage: &str) -> Result<&Arc<Grant>, KeyRefusal> {
        let value = value.ok_or(KeyRefusal::Missing)?;
        let digest = digest_words(&Sha256::digest(value.as_bytes()).into());
        let candidates = self.by_prefix.get(&digest[0]).ok_or(KeyRefusal::Unknown)?;
        let entry =
            candidates.iter().find(|e| bool::from(e.digest[..].ct_eq(&digest[..]))).ok_or(KeyRefusal::Unknown)?;
        if !entry.key.enabled {
            return Err(KeyRefusal::Disabled);
        }
        entry.grants.get(stage).ok_or(KeyRefusal::NotForStage)
    }

    /// The plans bound to a stage (`"api/stage"`).
    pub fn plans_of_stage(&self, api: &str, stage: &str) -> Vec<&str> {
        self.plans
            .values()
            .filter(|p| p.stages.iter().any(|s| s.api == api && s.stage == stage))
            .map(|p| p.name.as_str())
            .collect()
    }
}

/// A SHA-256 digest as four words (compared a word at a time).
fn digest_words(digest: &[u8; 32]) -> [u64; 4] {
    std::array::from_fn(|i| u64::from_le_bytes(digest[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
}

fn parse_digest(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Hex SHA-256 of a key value.
pub fn digest_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A new key value: 40 letters and digits.
pub fn generate_value() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..40).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Checks a key value: 20–128 letters and digits.
pub fn check_value(value: &str) -> Result<(), String> {
    if !(20..=128).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "an API key's value has 20 to 128 letters and digits (this one has {} characters{})",
            value.len(),
            if value.bytes().all(|b| b.is_ascii_alphanumeric()) { "" } else { ", not all letters and digits" }
        ));
    }
    Ok(())
}

/// Checks a plan or key name.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!("{what} name {name:?}: use 1 to 128 letters, digits, '-', '_' or '.'"));
    }
    Ok(())
}

/// Plans and keys, kept and served.
pub struct Catalog {
    db: Mutex<Connection>,
    file_plans: Vec<UsagePlan>,
    file_keys: Vec<ApiKey>,
    snapshot: ArcSwap<Snapshot>,
    clock: Clock,
}

/// A plan and key change's result for the caller.
pub type CatalogResult<T> = Result<T, CatalogError>;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS usage_plans (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_plans_seen (name TEXT PRIMARY KEY, created TEXT NOT NULL, created_day INTEGER NOT NULL);
"#;

impl Catalog {
    /// Opens `<data_dir>/policies.db` (or keeps everything in memory when
    /// `data_dir` is `None`), with the plans and keys the file declares.
    pub fn open(
        data_dir: Option<&Path>,
        mut file_plans: Vec<UsagePlan>,
        file_keys: Vec<ApiKey>,
        clock: Clock,
    ) -> CatalogResult<Catalog> {
        let conn = match data_dir {
            Some(dir) => Connection::open(dir.join("policies.db"))?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")?;
        conn.execute_batch(SCHEMA)?;
        // A declared plan's creation is when a server first saw it (its
        // quota offset's first period), kept across restarts.
        for plan in &mut file_plans {
            let seen: Option<(String, i64)> = conn
                .query_row("SELECT created, created_day FROM file_plans_seen WHERE name = ?1", [&plan.name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .ok();
            match seen {
                Some((created, day)) => {
                    plan.created = created;
                    plan.created_day = day;
                }
                None => {
                    conn.execute(
                        "INSERT INTO file_plans_seen (name, created, created_day) VALUES (?1, ?2, ?3)",
                        params![plan.name, plan.created, plan.created_day],
                    )?;
                }
            }
        }
        let catalog = Catalog {
            db: Mutex::new(conn),
            file_plans,
            file_keys,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            clock,
        };
        catalog.refresh(&catalog.db.lock())?;
        Ok(catalog)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Reads the stored plans and keys, merges the declared ones (which
    /// win a clash of names, with a warning) and publishes the snapshot.
    fn refresh(&self, conn: &Connection) -> CatalogResult<()> {
        let mut plans = BTreeMap::new();
        let mut stmt = conn.prepare("SELECT record FROM usage_plans")?;
        for record in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let plan: UsagePlan = serde_json::from_str(&record?).map_err(|e| CatalogError::Database(e.to_string()))?;
            plans.insert(plan.name.clone(), Arc::new(plan));
        }
        let mut keys = BTreeMap::new();
        let mut stmt = conn.prepare("SELECT record FROM api_keys")?;
        for record in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let key: ApiKey = serde_json::from_str(&record?).map_err(|e| CatalogError::Database(e.to_string()))?;
            keys.insert(key.name.clone(), Arc::new(key));
        }
        for plan in &self.file_plans {
            if plans.insert(plan.name.clone(), Arc::new(plan.clone())).is_some() {
                tracing::warn!(plan = %plan.name, "usage plan declared in the configuration and created at run time: the configuration's is used");
            }
        }
        for key in &self.file_keys {
            if keys.insert(key.name.clone(), Arc::new(key.clone())).is_some() {
                tracing::warn!(key = %key.name, "API key declared in the configuration and created at run time: the configuration's is used");
            }
        }
        self.snapshot.store(Arc::new(Snapshot::build(plans, keys)));
        Ok(())
    }

    /// Runs a change on the stored records, checked against the whole
    /// catalog as it would be after it, then publishes it.
    fn change<R>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, UsagePlan>, &mut BTreeMap<String, ApiKey>) -> CatalogResult<R>,
    ) -> CatalogResult<R> {
        let mut conn = self.db.lock();
        let current = self.snapshot();
        let mut plans: BTreeMap<String, UsagePlan> =
            current.plans.iter().map(|(k, v)| (k.clone(), (**v).clone())).collect();
        let mut keys: BTreeMap<String, ApiKey> = current.keys.iter().map(|(k, v)| (k.clone(), (**v).clone())).collect();
        let result = change(&mut plans, &mut keys)?;
        check_rules(&plans, &keys)?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM usage_plans", [])?;
        tx.execute("DELETE FROM api_keys", [])?;
        for plan in plans.values().filter(|p| p.source == Source::Api) {
            let record = serde_json::to_string(plan).map_err(|e| CatalogError::Database(e.to_string()))?;
            tx.execute("INSERT INTO usage_plans (name, record) VALUES (?1, ?2)", params![plan.name, record])?;
        }
        for key in keys.values().filter(|k| k.source == Source::Api) {
            let record = serde_json::to_string(key).map_err(|e| CatalogError::Database(e.to_string()))?;
            tx.execute("INSERT INTO api_keys (name, record) VALUES (?1, ?2)", params![key.name, record])?;
        }
        tx.commit()?;
        self.refresh(&conn)?;
        Ok(result)
    }

    pub fn create_plan(
        &self,
        name: &str,
        description: String,
        stages: Vec<ApiStage>,
        throttle: Option<Throttle>,
        quota: Option<Quota>,
    ) -> CatalogResult<UsagePlan> {
        check_name("a usage plan", name).map_err(CatalogError::Invalid)?;
        let plan = UsagePlan {
            name: name.to_string(),
            description,
            stages,
            throttle,
            quota,
            created: self.clock.rfc3339(),
            created_day: self.clock.today(),
            source: Source::Api,
        };
        check_plan(&plan).map_err(CatalogError::Invalid)?;
        self.change(|plans, _| {
            if let Some(existing) = plans.get(name) {
                return Err(CatalogError::Conflict(match existing.source {
                    Source::File => format!("usage plan {name:?} is declared in the configuration file"),
                    Source::Api => format!("usage plan {name:?} already exists"),
                }));
            }
            plans.insert(name.to_string(), plan.clone());
            Ok(plan)
        })
    }

    /// Changes a plan made at run time (`update` may refuse the change).
    pub fn update_plan(
        &self,
        name: &str,
        update: impl FnOnce(&mut UsagePlan) -> CatalogResult<()>,
    ) -> CatalogResult<UsagePlan> {
        self.change(|plans, _| {
            let plan = editable_plan(plans, name)?;
            update(plan)?;
            check_plan(plan).map_err(CatalogError::Invalid)?;
            Ok(plan.clone())
        })
    }

    /// Deletes a plan bound to no stage; keys lose it.
    pub fn delete_plan(&self, name: &str) -> CatalogResult<()> {
        self.change(|plans, keys| {
            let plan = editable_plan(plans, name)?;
            if !plan.stages.is_empty() {
                let stages: Vec<String> = plan.stages.iter().map(ApiStage::label).collect();
                let flags: Vec<String> = stages.iter().map(|s| format!("--remove-stage {s}")).collect();
                return Err(CatalogError::Conflict(format!(
                    "usage plan {name:?} is bound to {}; unbind it first: wasmgate plan update {name} {}",
                    stages.join(", "),
                    flags.join(" ")
                )));
            }
            plans.remove(name);
            for key in keys.values_mut() {
                key.plans.retain(|p| p != name);
            }
            Ok(())
        })
    }

    /// Creates a key (with `value`, or a generated one). Returns it and its value.
    pub fn create_key(
        &self,
        name: &str,
        value: Option<String>,
        plans: Vec<String>,
        description: String,
        enabled: bool,
        invalidate_cache: bool,
    ) -> CatalogResult<(ApiKey, String)> {
        check_name("an API key", name).map_err(CatalogError::Invalid)?;
        let value = value.unwrap_or_else(generate_value);
        check_value(&value).map_err(CatalogError::Invalid)?;
        let sha256 = digest_hex(&value);
        // A key made here is counted under an id of its own, random: a key
        // deleted and made again with the same value starts afresh, and
        // neither id tells anything about the value.
        let usage_id = uuid::Uuid::new_v4().simple().to_string();
        let key = ApiKey {
            name: name.to_string(),
            id: usage_id[..10].to_string(),
            description,
            enabled,
            usage_id,
            sha256,
            prefix: Some(value[..4].to_string()),
            plans,
            invalidate_cache,
            created: self.clock.rfc3339(),
            source: Source::Api,
        };
        self.change(|_, keys| {
            if let Some(existing) = keys.get(name) {
                return Err(CatalogError::Conflict(match existing.source {
                    Source::File => format!("API key {name:?} is declared in the configuration file"),
                    Source::Api => format!("API key {name:?} already exists"),
                }));
            }
            keys.insert(name.to_string(), key.clone());
            Ok(())
        })?;
        Ok((key, value))
    }

    /// Changes a key made at run time (`update` may refuse the change).
    pub fn update_key(
        &self,
        name: &str,
        update: impl FnOnce(&mut ApiKey) -> CatalogResult<()>,
    ) -> CatalogResult<ApiKey> {
        self.change(|_, keys| {
            let key = editable_key(keys, name)?;
            update(key)?;
            Ok(key.clone())
        })
    }

    /// Gives a key a new value (its usage stays counted where it was).
    pub fn rotate_key(&self, name: &str, value: Option<String>) -> CatalogResult<(ApiKey, String)> {
        let value = value.unwrap_or_else(generate_value);
        check_value(&value).map_err(CatalogError::Invalid)?;
        let key = self.update_key(name, |key| {
            key.sha256 = digest_hex(&value);
            key.prefix = Some(value[..4].to_string());
            Ok(())
        })?;
        Ok((key, value))
    }

    pub fn delete_key(&self, name: &str) -> CatalogResult<()> {
        self.change(|_, keys| {
            editable_key(keys, name)?;
            keys.remove(name);
            Ok(())
        })
    }
}

/// API Gateway's message for a usage plan not found, and the one most like it.
pub fn no_plan<'a>(name: &str, known: impl IntoIterator<Item = &'a String>) -> String {
    let hint = crate::suggest::did_you_mean(name, known.into_iter().map(String::as_str));
    format!("Invalid Usage Plan ID specified: no usage plan {name:?}{hint}")
}

/// API Gateway's message for an API key not found, and the one most like it.
pub fn no_key<'a>(name: &str, known: impl IntoIterator<Item = &'a String>) -> String {
    let hint = crate::suggest::did_you_mean(name, known.into_iter().map(String::as_str));
    format!("Invalid API Key identifier specified: no API key {name:?}{hint}")
}

fn editable_plan<'a>(plans: &'a mut BTreeMap<String, UsagePlan>, name: &str) -> CatalogResult<&'a mut UsagePlan> {
    if !plans.contains_key(name) {
        return Err(CatalogError::NotFound(no_plan(name, plans.keys())));
    }
    let plan = plans.get_mut(name).expect("checked above");
    if plan.source == Source::File {
        return Err(CatalogError::Conflict(format!(
            "usage plan {name:?} is declared in the configuration file: change it there"
        )));
    }
    Ok(plan)
}

fn editable_key<'a>(keys: &'a mut BTreeMap<String, ApiKey>, name: &str) -> CatalogResult<&'a mut ApiKey> {
    if !keys.contains_key(name) {
        return Err(CatalogError::NotFound(no_key(name, keys.keys())));
    }
    let key = keys.get_mut(name).expect("checked above");
    if key.source == Source::File {
        return Err(CatalogError::Conflict(format!(
            "API key {name:?} is declared in the configuration file: change it there"
        )));
    }
    Ok(key)
}

/// A plan's own rules.
pub fn check_plan(plan: &UsagePlan) -> Result<(), String> {
    if let Some(t) = &plan.throttle {
        t.check()?;
    }
    if let Some(q) = &plan.quota {
        q.check()?;
    }
    let mut seen = std::collections::HashSet::new();
    for stage in &plan.stages {
        if !seen.insert(stage.label()) {
            return Err(format!("stage {} is listed twice", stage.label()));
        }
        if stage.method_throttle.len() > 20 {
            return Err(format!("{}: at most 20 method throttles per stage", stage.label()));
        }
        for (method, t) in &stage.method_throttle {
            check_method_key(method)?;
            t.check().map_err(|e| format!("{} {method}: {e}", stage.label()))?;
        }
    }
    Ok(())
}

/// `"/items/GET"`: a resource path and a method.
pub fn check_method_key(method: &str) -> Result<(), String> {
    match method.rsplit_once('/') {
        Some((path, m)) if path.starts_with('/') && !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            Ok(())
        }
        _ => Err(format!("{method:?}: name a method as RESOURCE/METHOD, e.g. /items/GET")),
    }
}

/// The catalog's cross-record rules: keys name existing plans; unique
/// values; one plan per stage per key.
pub fn check_rules(plans: &BTreeMap<String, UsagePlan>, keys: &BTreeMap<String, ApiKey>) -> CatalogResult<()> {
    let mut values: HashMap<&str, &str> = HashMap::new();
    for key in keys.values() {
        if let Some(other) = values.insert(key.sha256.as_str(), key.name.as_str()) {
            // Which key holds it is not said: that would tell a caller
            // guessing values whose value it guessed.
            let _ = other;
            return Err(CatalogError::Conflict(format!(
                "API key {:?}: another key has this value (values are unique)",
                key.name
            )));
        }
        if key.plans.len() > 10 {
            return Err(CatalogError::Invalid(format!("API key {:?}: at most 10 usage plans per key", key.name)));
        }
        let mut stages: HashMap<String, &str> = HashMap::new();
        for plan_name in &key.plans {
            let plan = plans.get(plan_name).ok_or_else(|| {
                let hint = crate::suggest::did_you_mean(plan_name, plans.keys().map(String::as_str));
                CatalogError::NotFound(format!("API key {:?}: no usage plan {plan_name:?}{hint}", key.name))
            })?;
            for stage in &plan.stages {
                if let Some(other) = stages.insert(stage.label(), plan_name) {
                    return Err(CatalogError::Conflict(format!(
                        "API key {:?} would be in two usage plans on stage {}: {other} and {plan_name} (a key is in one plan per stage)",
                        key.name,
                        stage.label()
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::open(None, Vec::new(), Vec::new(), Clock::default()).unwrap()
    }

    #[test]
    fn keys_are_granted_through_a_plan_of_the_stage() {
        let c = catalog();
        let stages = vec![ApiStage::parse("ItemsAPI/prod").unwrap()];
        c.create_plan("P", String::new(), stages, Some(Throttle { rate: 10.0, burst: 20 }), None).unwrap();
        let (key, value) = c.create_key("demo", None, vec!["P".into()], String::new(), true, false).unwrap();
        assert_eq!(value.len(), 40);
        assert_ne!(key.sha256, value);
        let snap = c.snapshot();
        assert!(snap.authorize(Some(&value), "ItemsAPI/prod").is_ok());
        assert_eq!(snap.authorize(Some(&value), "ItemsAPI/dev").unwrap_err(), KeyRefusal::NotForStage);
        assert_eq!(snap.authorize(None, "ItemsAPI/prod").unwrap_err(), KeyRefusal::Missing);
        assert_eq!(snap.authorize(Some("x".repeat(30).as_str()), "ItemsAPI/prod").unwrap_err(), KeyRefusal::Unknown);
        c.update_key("demo", |k| {
            k.enabled = false;
            Ok(())
        })
        .unwrap();
        assert_eq!(c.snapshot().authorize(Some(&value), "ItemsAPI/prod").unwrap_err(), KeyRefusal::Disabled);
        // A rotation changes the value, not where usage is counted.
        let (rotated, new_value) = c.rotate_key("demo", None).unwrap();
        assert_eq!(rotated.usage_id, key.usage_id);
        c.update_key("demo", |k| {
            k.enabled = true;
            Ok(())
        })
        .unwrap();
        assert_eq!(c.snapshot().authorize(Some(&value), "ItemsAPI/prod").unwrap_err(), KeyRefusal::Unknown);
        assert!(c.snapshot().authorize(Some(&new_value), "ItemsAPI/prod").is_ok());
    }

    #[test]
    fn the_rules_hold() {
        let c = catalog();
        let prod = || vec![ApiStage::parse("A/prod").unwrap()];
        c.create_plan("P", String::new(), prod(), None, None).unwrap();
        c.create_plan("Q", String::new(), prod(), None, None).unwrap();
        assert!(matches!(c.create_plan("P", String::new(), vec![], None, None), Err(CatalogError::Conflict(_))));
        let err = c.create_key("k", None, vec!["P".into(), "Q".into()], String::new(), true, false).unwrap_err();
        assert!(err.to_string().contains("one plan per stage"), "{err}");
        assert!(c.create_key("k", Some("short".into()), vec![], String::new(), true, false).is_err());
        let v = "a".repeat(20);
        c.create_key("k", Some(v.clone()), vec!["P".into()], String::new(), true, false).unwrap();
        assert!(matches!(
            c.create_key("j", Some(v), vec![], String::new(), true, false),
            Err(CatalogError::Conflict(_))
        ));
        assert!(matches!(c.delete_plan("P"), Err(CatalogError::Conflict(_))));
        c.update_plan("P", |p| {
            p.stages.clear();
            Ok(())
        })
        .unwrap();
        c.delete_plan("P").unwrap();
        assert!(c.snapshot().keys["k"].plans.is_empty());
        assert!(Quota::parse("1000/DAY").is_ok());
        assert!(Quota::parse("1000/YEAR").is_err());
    }
}
