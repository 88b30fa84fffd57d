//! The durable registry: SQLite transactions, then a fresh snapshot.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::code::CodeStore;
use super::state::{
    AliasRecord, DeploymentRecord, FunctionRecord, RegistryState, StageRecord, VersionRecord, VersionRef,
};
use super::{RegistryError, validate_alias_name, validate_function_name};
use crate::runtime::FunctionConfig;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS functions (
    name          TEXT PRIMARY KEY,
    description   TEXT NOT NULL DEFAULT '',
    code_sha256   TEXT NOT NULL,
    code_size     INTEGER NOT NULL,
    config        TEXT NOT NULL,
    created       TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    next_version  INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS versions (
    function    TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size   INTEGER NOT NULL,
    config      TEXT NOT NULL,
    description TEXT NOT NULL,
    created     TEXT NOT NULL,
    PRIMARY KEY (function, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    function          TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    version           TEXT NOT NULL,
    additional        INTEGER,
    additional_weight REAL,
    description       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (function, name)
);
CREATE TABLE IF NOT EXISTS deployments (
    id          TEXT PRIMARY KEY,
    api         TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    description TEXT NOT NULL,
    created     TEXT NOT NULL,
    definition  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stage_deployments (
    api           TEXT NOT NULL,
    stage         TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    at            TEXT NOT NULL,
    PRIMARY KEY (api, stage, seq)
);
CREATE TABLE IF NOT EXISTS kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// An alias's new target.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasUpdate {
    pub version: VersionRef,
    /// At most one additional version and the share of calls (0.0–1.0) it gets.
    pub additional_version: Option<(u32, f64)>,
    pub description: Option<String>,
}

/// The registry: database, code store, and the current snapshot.
pub struct Registry {
    db: Mutex<Connection>,
    code: CodeStore,
    state: ArcSwap<RegistryState>,
    /// Counts the published snapshots (see [`Registry::generation`]).
    generation: AtomicU64,
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn config_json(config: &FunctionConfig) -> String {
    serde_json::to_string(config).expect("FunctionConfig serializes")
}

fn parse_config(text: String) -> rusqlite::Result<FunctionConfig> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

impl Registry {
    /// Opens (or creates) the registry in `data_dir`, removing code blobs that
    /// an interrupted change left unreferenced.
    pub fn open(data_dir: &Path) -> Result<Registry, RegistryError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| RegistryError::Io(format!("create {}: {e}", data_dir.display())))?;
        let conn = Connection::open(data_dir.join("registry.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )?;
        conn.execute_batch(SCHEMA)?;
        let code = CodeStore::open(&data_dir.join("code"))?;
        let state = load_state(&conn)?;
        let referenced: HashSet<String> = state
            .functions
            .values()
            .flat_map(|f| {
                std::iter::once(f.code_sha256.clone()).chain(f.versions.values().map(|v| v.code_sha256.clone()))
            })
            .collect();
        let removed = code.remove_unreferenced(&referenced);
        if removed > 0 {
            tracing::info!(removed, "removed unreferenced code blobs");
        }
        Ok(Registry { db: Mutex::new(conn), code, state: ArcSwap::from_pointee(state), generation: AtomicU64::new(0) })
    }

    /// The current snapshot (cheap; never blocks on writers).
    pub fn snapshot(&self) -> Arc<RegistryState> {
        self.state.load_full()
    }

    /// Which snapshot is current: changes (after the new snapshot is
    /// published) whenever anything does. Read it before [`Registry::snapshot`]
    /// and whatever was derived from that snapshot stays valid for as long as
    /// the generation is the same.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn code(&self) -> &CodeStore {
        &self.code
    }

    /// Runs `change` in one transaction and publishes the new snapshot.
    fn write<R>(&self, change: impl FnOnce(&Transaction<'_>) -> Result<R, RegistryError>) -> Result<R, RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let result = change(&tx)?;
        tx.commit()?;
        self.state.store(Arc::new(load_state(&conn)?));
        self.generation.fetch_add(1, Ordering::Release);
        Ok(result)
    }

    /// A small durable setting (e.g. the admin token's hash, bootstrap marks).
    pub fn get_setting(&self, key: &str) -> Result<Option<String>, RegistryError> {
        let conn = self.db.lock();
        Ok(conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), RegistryError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
                [key, value],
            )?;
            Ok(())
        })
    }

    /// Creates the function or replaces its `$LATEST` code. `sha256` must be
    /// in the code store already. `config` replaces `$LATEST`'s configuration
    /// when given (a new function gets the default otherwise).
    pub fn put_code(
        &self,
        name: &str,
        sha256: &str,
        code_size: u64,
        config: Option<&FunctionConfig>,
        description: Option<&str>,
    ) -> Result<FunctionRecord, RegistryError> {
        validate_function_name(name)?;
        self.write(|tx| {
            let t = now();
            let exists: bool =
                tx.query_row("SELECT COUNT(*) FROM functions WHERE name = ?1", [name], |r| r.get::<_, i64>(0))? > 0;
            if exists {
                tx.execute(
                    "UPDATE functions SET code_sha256 = ?2, code_size = ?3, last_modified = ?4 WHERE name = ?1",
                    params![name, sha256, code_size as i64, t],
                )?;
                if let Some(c) = config {
                    tx.execute("UPDATE functions SET config = ?2 WHERE name = ?1", params![name, config_json(c)])?;
                }
                if let Some(d) = description {
                    tx.execute("UPDATE functions SET description = ?2 WHERE name = ?1", params![name, d])?;
                }
            } else {
                let config = config.cloned().unwrap_or_default();
                tx.execute(
                    "INSERT INTO functions (name, description, code_sha256, code_size, config, created, last_modified)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![name, description.unwrap_or(""), sha256, code_size as i64, config_json(&config), t],
                )?;
            }
            Ok(())
        })?;
        Ok(self.snapshot().function(name)?.clone())
    }

    /// Replaces `$LATEST`'s configuration.
    pub fn put_config(&self, name: &str, config: &FunctionConfig) -> Result<FunctionRecord, RegistryError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE functions SET config = ?2, last_modified = ?3 WHERE name = ?1",
                params![name, config_json(config), now()],
            )?;
            if n == 0 {
                return Err(RegistryError::NotFound(format!("Function not found: {name}")));
            }
            Ok(())
        })?;
        Ok(self.snapshot().function(name)?.clone())
    }

    /// Publishes `$LATEST` as a new version, or returns the newest version when
    /// `$LATEST` has not changed since it was published (as Lambda does).
    /// `expected_sha256`, when given, must match `$LATEST`'s code. Returns the
    /// version and whether it is new.
    pub fn publish(
        &self,
        name: &str,
        description: &str,
        expected_sha256: Option<&str>,
    ) -> Result<(VersionRecord, bool), RegistryError> {
        let (number, created) = self.write(|tx| {
            let row = tx
                .query_row(
                    "SELECT code_sha256, code_size, config, next_version FROM functions WHERE name = ?1",
                    [name],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?)),
                )
                .optional()?
                .ok_or_else(|| RegistryError::NotFound(format!("Function not found: {name}")))?;
            let (sha, size, config, next) = row;
            if let Some(expected) = expected_sha256
                && expected != sha
            {
                return Err(RegistryError::InvalidParameter(format!(
                    "CodeSHA256 ({expected}) is different from current CodeSHA256 in $LATEST ({sha}). Please try again with the CodeSHA256 in $LATEST."
                )));
            }
            let newest: Option<(i64, String, String)> = tx
                .query_row(
                    "SELECT version, code_sha256, config FROM versions WHERE function = ?1 ORDER BY version DESC LIMIT 1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((v, vsha, vconfig)) = newest
                && vsha == sha
                && vconfig == config
            {
                return Ok((v as u32, false));
            }
            tx.execute(
                "INSERT INTO versions (function, version, code_sha256, code_size, config, description, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![name, next, sha, size, config, description, now()],
            )?;
            tx.execute("UPDATE functions SET next_version = ?2 WHERE name = ?1", params![name, next + 1])?;
            Ok((next as u32, true))
        })?;
        let state = self.snapshot();
        let version =
            state.function(name)?.versions.get(&number).cloned().ok_or_else(|| {
                RegistryError::Database(format!("version {number} of {name} vanished after publishing"))
            })?;
        Ok((version, created))
    }

    /// Creates or updates an alias. `must_exist`: `Some(true)` to update only
    /// (404 if missing), `Some(false)` to create only (409 if present).
    pub fn put_alias(
        &self,
        function: &str,
        alias: &str,
        update: &AliasUpdate,
        must_exist: Option<bool>,
    ) -> Result<AliasRecord, RegistryError> {
        validate_alias_name(alias)?;
        let state = self.snapshot();
        let f = state.function(function)?;
        check_alias_target(f, update)?;
        let existing = f.aliases.get(alias);
        match (must_exist, existing) {
            (Some(true), None) => return Err(RegistryError::NotFound(f.no_alias(alias))),
            (Some(false), Some(_)) => {
                return Err(RegistryError::Conflict(format!("Alias already exists: {function}:{alias}")));
            }
            _ => {}
        }
        let description =
            update.description.clone().or_else(|| existing.map(|a| a.description.clone())).unwrap_or_default();
        self.write(|tx| {
            // Re-check inside the transaction: the versions must still exist.
            for v in std::iter::once(update.version).chain(update.additional_version.map(|(v, _)| VersionRef::Number(v))) {
                if let VersionRef::Number(n) = v {
                    let found: i64 = tx.query_row(
                        "SELECT COUNT(*) FROM versions WHERE function = ?1 AND version = ?2",
                        params![function, n],
                        |r| r.get(0),
                    )?;
                    if found == 0 {
                        return Err(RegistryError::NotFound(format!("Function not found: {function}:{n}")));
                    }
                }
            }
            tx.execute(
                "INSERT INTO aliases (function, name, version, additional, additional_weight, description)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(function, name) DO UPDATE SET version = ?3, additional = ?4, additional_weight = ?5, description = ?6",
                params![
                    function,
                    alias,
                    update.version.to_string(),
                    update.additional_version.map(|(v, _)| v),
                    update.additional_version.map(|(_, w)| w),
                    description
                ],
            )?;
            Ok(())
        })?;
        self.snapshot()
            .function(function)?
            .aliases
            .get(alias)
            .cloned()
            .ok_or_else(|| RegistryError::Database("alias vanished after writing it".into()))
    }

    pub fn delete_alias(&self, function: &str, alias: &str) -> Result<(), RegistryError> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM aliases WHERE function = ?1 AND name = ?2", [function, alias])?;
            if n == 0 {
                let state = self.snapshot();
                let message = match state.functions.get(function) {
                    Some(f) => f.no_alias(alias),
                    None => format!("Alias not found: {function}:{alias}"),
                };
                return Err(RegistryError::NotFound(message));
            }
            Ok(())
        })
    }

    /// Deletes a published version, unless an alias uses it.
    pub fn delete_version(&self, function: &str, version: &str) -> Result<(), RegistryError> {
        let number = match VersionRef::parse(version) {
            Some(VersionRef::Number(n)) => n,
            Some(VersionRef::Latest) => {
                return Err(RegistryError::InvalidParameter(
                    "$LATEST version cannot be deleted without deleting the function.".into(),
                ));
            }
            None => return Err(RegistryError::InvalidParameter(format!("invalid version {version:?}"))),
        };
        self.write(|tx| {
            let mut stmt = tx.prepare(
                "SELECT name FROM aliases WHERE function = ?1 AND (version = ?2 OR additional = ?3) ORDER BY name",
            )?;
            let users: Vec<String> = stmt
                .query_map(params![function, number.to_string(), number], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if !users.is_empty() {
                return Err(RegistryError::Conflict(format!(
                    "Unable to delete version because the following aliases reference it: [{}]",
                    users.join(", ")
                )));
            }
            let n =
                tx.execute("DELETE FROM versions WHERE function = ?1 AND version = ?2", params![function, number])?;
            if n == 0 {
                return Err(RegistryError::NotFound(format!("Function not found: {function}:{number}")));
            }
            Ok(())
        })
    }

    /// Deletes a function with all its versions and aliases.
    pub fn delete_function(&self, function: &str) -> Result<(), RegistryError> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM functions WHERE name = ?1", [function])?;
            if n == 0 {
                return Err(RegistryError::NotFound(format!("Function not found: {function}")));
            }
            Ok(())
        })
    }
}

impl Registry {
    /// Stores a new deployment of `api` (its definition as TOML text) and
    /// points `stage` at it, in one transaction.
    pub fn deploy(
        &self,
        api: &str,
        stage: &str,
        definition: &str,
        description: &str,
    ) -> Result<DeploymentRecord, RegistryError> {
        let id = deployment_id();
        self.write(|tx| {
            let seq: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM deployments WHERE api = ?1", [api], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO deployments (id, api, seq, description, created, definition) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, api, seq, description, now(), definition],
            )?;
            point_stage(tx, api, stage, &id)
        })?;
        self.snapshot()
            .deployments
            .get(api)
            .and_then(|d| d.iter().find(|d| d.id == id).cloned())
            .ok_or_else(|| RegistryError::Database("deployment vanished after writing it".into()))
    }

    /// Points `stage` back at an earlier deployment: `to` (its id, or its
    /// number as the list shows it: `3` or `#3`), or the one before the
    /// current one on the stage's way back ([`StageRecord::previous`]).
    pub fn rollback(&self, api: &str, stage: &str, to: Option<&str>) -> Result<StageRecord, RegistryError> {
        let state = self.snapshot();
        if !state.deployments.contains_key(api) {
            let apis = state.deployments.keys().map(String::as_str);
            return Err(RegistryError::NotFound(format!(
                "Invalid API identifier specified: API {api:?} is not deployed{}",
                crate::suggest::hint_and_list(api, "the deployed APIs", apis)
            )));
        }
        let record = state.stages.get(&(api.to_string(), stage.to_string())).ok_or_else(|| {
            let stages = state.stages.keys().filter(|(a, _)| a == api).map(|(_, s)| s.as_str());
            let known = crate::suggest::hint_and_list(stage, &format!("the deployed stages of {api}"), stages);
            RegistryError::NotFound(format!("Invalid stage identifier specified: {api}/{stage}{known}"))
        })?;
        let target = match to {
            Some(to) => state.deployment(api, to)?.id.clone(),
            None => record.previous().map(str::to_string).ok_or_else(|| {
                RegistryError::Conflict(format!(
                    "stage {stage} has no earlier deployment to roll back to (deploy, or give one with --to)"
                ))
            })?,
        };
        self.write(|tx| point_stage(tx, api, stage, &target))?;
        self.snapshot()
            .stages
            .get(&(api.to_string(), stage.to_string()))
            .cloned()
            .ok_or_else(|| RegistryError::Database("stage vanished after writing it".into()))
    }
}

fn point_stage(tx: &Transaction<'_>, api: &str, stage: &str, deployment_id: &str) -> Result<(), RegistryError> {
    let seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM stage_deployments WHERE api = ?1 AND stage = ?2",
        [api, stage],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO stage_deployments (api, stage, seq, deployment_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![api, stage, seq, deployment_id, now()],
    )?;
    Ok(())
}

/// A short random id, like API Gateway's deployment ids.
fn deployment_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..10).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// Lambda's rules for an alias's routing configuration.
fn check_alias_target(f: &FunctionRecord, update: &AliasUpdate) -> Result<(), RegistryError> {
    if let VersionRef::Number(n) = update.version
        && !f.versions.contains_key(&n)
    {
        return Err(RegistryError::NotFound(format!("Function not found: {}:{n}", f.name)));
    }
    if let Some((extra, weight)) = update.additional_version {
        if update.version == VersionRef::Latest {
            return Err(RegistryError::InvalidParameter(
                "$LATEST is not supported for an alias pointing to more than 1 version".into(),
            ));
        }
        if update.version == VersionRef::Number(extra) {
            return Err(RegistryError::InvalidParameter(format!(
                "Function version {extra} is already included in routing configuration."
            )));
        }
        if !f.versions.contains_key(&extra) {
            return Err(RegistryError::NotFound(format!("Function not found: {}:{extra}", f.name)));
        }
        if !(0.0..=1.0).contains(&weight) || weight.is_nan() {
            return Err(RegistryError::InvalidParameter(format!(
                "the weight of version {extra} must be between 0.0 and 1.0, not {weight}"
            )));
        }
    }
    Ok(())
}

fn load_state(conn: &Connection) -> Result<RegistryState, RegistryError> {
    let mut functions = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT name, description, code_sha256, code_size, config, created, last_modified, next_version FROM functions",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(FunctionRecord {
            name: r.get(0)?,
            description: r.get(1)?,
            code_sha256: r.get(2)?,
            code_size: r.get::<_, i64>(3)? as u64,
            config: parse_config(r.get(4)?)?,
            created: r.get(5)?,
            last_modified: r.get(6)?,
            next_version: r.get::<_, i64>(7)? as u32,
            versions: BTreeMap::new(),
            aliases: BTreeMap::new(),
        })
    })?;
    for f in rows {
        let f = f?;
        functions.insert(f.name.clone(), f);
    }
    let mut stmt =
        conn.prepare("SELECT function, version, code_sha256, code_size, config, description, created FROM versions")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            VersionRecord {
                version: r.get::<_, i64>(1)? as u32,
                code_sha256: r.get(2)?,
                code_size: r.get::<_, i64>(3)? as u64,
                config: parse_config(r.get(4)?)?,
                description: r.get(5)?,
                created: r.get(6)?,
            },
        ))
    })?;
    for row in rows {
        let (function, v) = row?;
        if let Some(f) = functions.get_mut(&function) {
            f.versions.insert(v.version, v);
        }
    }
    let mut stmt =
        conn.prepare("SELECT function, name, version, additional, additional_weight, description FROM aliases")?;
    let rows = stmt.query_map([], |r| {
        let version: String = r.get(2)?;
        let additional: Option<i64> = r.get(3)?;
        let weight: Option<f64> = r.get(4)?;
        Ok((
            r.get::<_, String>(0)?,
            AliasRecord {
                name: r.get(1)?,
                version: VersionRef::parse(&version).unwrap_or(VersionRef::Latest),
                additional_version: additional.zip(weight).map(|(v, w)| (v as u32, w)),
                description: r.get(5)?,
            },
        ))
    })?;
    for row in rows {
        let (function, a) = row?;
        if let Some(f) = functions.get_mut(&function) {
            f.aliases.insert(a.name.clone(), a);
        }
    }
    let mut deployments: BTreeMap<String, Vec<DeploymentRecord>> = BTreeMap::new();
    let mut stmt =
        conn.prepare("SELECT id, api, seq, description, created, definition FROM deployments ORDER BY api, seq")?;
    let rows = stmt.query_map([], |r| {
        Ok(DeploymentRecord {
            id: r.get(0)?,
            api: r.get(1)?,
            seq: r.get::<_, i64>(2)? as u64,
            description: r.get(3)?,
            created: r.get(4)?,
            definition: r.get(5)?,
        })
    })?;
    for row in rows {
        let d = row?;
        deployments.entry(d.api.clone()).or_default().push(d);
    }
    let mut stages: BTreeMap<(String, String), StageRecord> = BTreeMap::new();
    let mut stmt =
        conn.prepare("SELECT api, stage, deployment_id, at FROM stage_deployments ORDER BY api, stage, seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
    })?;
    for row in rows {
        let (api, stage, id, at) = row?;
        let entry = stages.entry((api.clone(), stage.clone())).or_insert_with(|| StageRecord {
            api,
            stage,
            deployment_id: String::new(),
            last_updated: String::new(),
            history: Vec::new(),
        });
        entry.record(id, at);
    }
    Ok(RegistryState { functions, deployments, stages })
}
