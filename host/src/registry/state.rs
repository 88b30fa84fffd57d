//! The registry's in-memory snapshot and qualifier resolution.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::RegistryError;
use crate::runtime::{FunctionConfig, VersionSpec};

/// `$LATEST` or a published version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VersionRef {
    Latest,
    Number(u32),
}

impl VersionRef {
    /// Parses `$LATEST` or a positive number.
    pub fn parse(s: &str) -> Option<VersionRef> {
        if s == "$LATEST" {
            return Some(VersionRef::Latest);
        }
        s.parse::<u32>().ok().filter(|n| *n > 0 && !s.starts_with('+')).map(VersionRef::Number)
    }
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Latest => f.write_str("$LATEST"),
            VersionRef::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for VersionRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        VersionRef::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not $LATEST or a version")))
    }
}

/// A published, immutable version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u32,
    pub code_sha256: String,
    pub code_size: u64,
    pub config: FunctionConfig,
    pub description: String,
    /// RFC 3339 creation time.
    pub created: String,
}

/// An alias: a name for a version, optionally shifting a share of the calls
/// to a second version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub version: VersionRef,
    /// `(version, weight)`: that share of calls (0.0–1.0) goes to `version`.
    pub additional_version: Option<(u32, f64)>,
    pub description: String,
}

/// One function: `$LATEST`, its versions and aliases (as the admin API
/// answers it, and as a client reads it back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub name: String,
    pub description: String,
    /// `$LATEST`'s code and configuration.
    pub code_sha256: String,
    pub code_size: u64,
    pub config: FunctionConfig,
    pub created: String,
    pub last_modified: String,
    pub versions: BTreeMap<u32, VersionRecord>,
    pub aliases: BTreeMap<String, AliasRecord>,
    /// The number the next published version gets (never reused).
    pub next_version: u32,
}

impl FunctionRecord {
    /// The code and configuration of `$LATEST` or of a version.
    pub fn spec(&self, version: VersionRef) -> Option<VersionSpec> {
        match version {
            VersionRef::Latest => Some(VersionSpec {
                function: self.name.clone(),
                version: VersionRef::Latest,
                code_sha256: self.code_sha256.clone(),
                config: self.config.clone(),
            }),
            VersionRef::Number(n) => self.versions.get(&n).map(|v| VersionSpec {
                function: self.name.clone(),
                version: VersionRef::Number(n),
                code_sha256: v.code_sha256.clone(),
                config: v.config.clone(),
            }),
        }
    }

    /// What may follow `name:`, for an error: `aliases: dev, prod; versions:
    /// 1, 2; or $LATEST` (an alias, a version, or `$LATEST`).
    pub fn qualifiers(&self) -> String {
        let versions: Vec<String> = self.versions.keys().map(u32::to_string).collect();
        format!(
            "{} has aliases: {}; versions: {}; or $LATEST",
            self.name,
            crate::suggest::list(self.aliases.keys().map(String::as_str)),
            crate::suggest::list(versions.iter().map(String::as_str))
        )
    }

    /// "Alias not found", with the alias most like `alias` and the list.
    pub fn no_alias(&self, alias: &str) -> String {
        let names = self.aliases.keys().map(String::as_str);
        let known = crate::suggest::hint_and_list(alias, &format!("{} has aliases", self.name), names);
        format!("Alias not found: {}:{alias}{known}", self.name)
    }

    /// The versions that aliases point at.
    pub fn aliased_versions(&self) -> impl Iterator<Item = VersionRef> + '_ {
        self.aliases
            .values()
            .flat_map(|a| std::iter::once(a.version).chain(a.additional_version.map(|(v, _)| VersionRef::Number(v))))
    }
}

/// `name`, `name:$LATEST`, `name:7` or `name:alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualifier<'a> {
    pub function: &'a str,
    pub qualifier: Option<&'a str>,
}

impl<'a> Qualifier<'a> {
    pub fn parse(s: &'a str) -> Qualifier<'a> {
        match s.split_once(':') {
            Some((function, q)) => Qualifier { function, qualifier: Some(q) },
            None => Qualifier { function: s, qualifier: None },
        }
    }
}

/// What a qualifier resolved to: one version, or two with a weight.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub function: &'a FunctionRecord,
    pub primary: VersionRef,
    pub additional: Option<(u32, f64)>,
}

impl Target<'_> {
    /// Picks the version for one call (see [`weighted_pick`]).
    pub fn pick(&self, roll: impl FnOnce() -> f64) -> VersionRef {
        weighted_pick(self.primary, self.additional.map(|(v, weight)| (VersionRef::Number(v), weight)), roll)
    }
}

/// An alias's choice for one call: the additional version with its weight's
/// probability, else the primary. `roll` (uniform in [0, 1)) is drawn only
/// when there is an additional version.
pub fn weighted_pick<T>(primary: T, additional: Option<(T, f64)>, roll: impl FnOnce() -> f64) -> T {
    match additional {
        Some((v, weight)) if roll() < weight => v,
        _ => primary,
    }
}

/// A deployment: an immutable snapshot of an API's definition.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentRecord {
    pub id: String,
    pub api: String,
    /// 1, 2, 3 … per API, in the order of deployment.
    pub seq: u64,
    pub description: String,
    pub created: String,
    /// The API's definition, TOML text.
    #[serde(skip)]
    pub definition: String,
}

/// A stage and the deployment it serves.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    pub api: String,
    pub stage: String,
    pub deployment_id: String,
    pub last_updated: String,
    /// Every change of the deployment it serves, oldest first: a deploy, or
    /// a rollback to a deployment it served before.
    pub history: Vec<StageChange>,
}

/// One change of a stage's deployment.
#[derive(Debug, Clone, Serialize)]
pub struct StageChange {
    pub deployment_id: String,
    /// RFC 3339.
    pub at: String,
    /// A return to a deployment the stage served before.
    pub rollback: bool,
}

impl StageRecord {
    /// Adds a change (replaying the stored ones, in order).
    pub(super) fn record(&mut self, deployment_id: String, at: String) {
        let rollback = self.history.iter().any(|c| c.deployment_id == deployment_id);
        self.deployment_id = deployment_id.clone();
        self.last_updated = at.clone();
        self.history.push(StageChange { deployment_id, at, rollback });
    }

    /// The deployment a rollback without a target goes back to: the one
    /// before the current one on the stage's way back. A deploy adds a step
    /// to the way back; a rollback to a deployment on it takes the steps
    /// after that one off. So rollbacks go on back, #4 → #3 → #1, and never
    /// forward again.
    pub fn previous(&self) -> Option<&str> {
        let mut way_back: Vec<&str> = Vec::new();
        for change in &self.history {
            match way_back.iter().rposition(|d| *d == change.deployment_id) {
                Some(i) if change.rollback => way_back.truncate(i + 1),
                _ => way_back.push(&change.deployment_id),
            }
        }
        let n = way_back.len();
        (n >= 2).then(|| way_back[n - 2])
    }
}

/// An immutable view of the whole registry, replaced on every change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegistryState {
    pub functions: BTreeMap<String, FunctionRecord>,
    /// Deployments by API, oldest first.
    pub deployments: BTreeMap<String, Vec<DeploymentRecord>>,
    /// Stages by (API, stage).
    #[serde(skip)]
    pub stages: BTreeMap<(String, String), StageRecord>,
}

impl RegistryState {
    /// A function by name; not found, with the name most like it.
    pub fn function(&self, name: &str) -> Result<&FunctionRecord, RegistryError> {
        self.functions.get(name).ok_or_else(|| {
            let hint = crate::suggest::did_you_mean(name, self.functions.keys().map(String::as_str));
            RegistryError::NotFound(format!("Function not found: {name}{hint}"))
        })
    }

    /// Resolves `name[:qualifier]` to the version(s) it names. A qualifier
    /// that names nothing is reported with what the function has.
    pub fn resolve(&self, qualified: &str) -> Result<Target<'_>, RegistryError> {
        let q = Qualifier::parse(qualified);
        if q.qualifier == Some("") {
            return Err(RegistryError::InvalidParameter(format!(
                "{qualified:?} has an empty qualifier after ':'. If you wrote {0}:$LATEST, the shell replaced \
                 $LATEST with nothing: quote it ('{0}:$LATEST'), or leave the qualifier out",
                q.function
            )));
        }
        let f = self.function(q.function)?;
        let target = |primary, additional| Target { function: f, primary, additional };
        let not_found = || {
            let hint = q.qualifier.map(|a| crate::suggest::did_you_mean(a, f.aliases.keys().map(String::as_str)));
            RegistryError::NotFound(format!(
                "Function not found: {qualified}{} ({})",
                hint.unwrap_or_default(),
                f.qualifiers()
            ))
        };
        match q.qualifier {
            None | Some("$LATEST") => Ok(target(VersionRef::Latest, None)),
            Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => match VersionRef::parse(s) {
                Some(VersionRef::Number(n)) if f.versions.contains_key(&n) => Ok(target(VersionRef::Number(n), None)),
                _ => Err(not_found()),
            },
            Some(alias) => {
                let a = f.aliases.get(alias).ok_or_else(not_found)?;
                Ok(target(a.version, a.additional_version))
            }
        }
    }

    /// One of `api`'s deployments, by its id or by its number as the list
    /// shows it (`3` or `#3`).
    pub fn deployment(&self, api: &str, id_or_number: &str) -> Result<&DeploymentRecord, RegistryError> {
        let deployments = self.deployments.get(api).map(Vec::as_slice).unwrap_or_default();
        let number = id_or_number.strip_prefix('#').unwrap_or(id_or_number).parse::<u64>().ok();
        deployments
            .iter()
            .find(|d| d.id == id_or_number)
            .or_else(|| deployments.iter().find(|d| Some(d.seq) == number))
            .ok_or_else(|| {
                let known = match (deployments.first(), deployments.last()) {
                    (Some(first), Some(last)) => format!("{api} has deployments #{} to #{}", first.seq, last.seq),
                    _ => format!("{api} has no deployments"),
                };
                RegistryError::NotFound(format!("Invalid deployment identifier specified: {id_or_number} ({known})"))
            })
    }

    /// Every version spec that can be invoked (each function's `$LATEST` and
    /// its published versions).
    pub fn all_specs(&self) -> Vec<VersionSpec> {
        let mut specs = Vec::new();
        for f in self.functions.values() {
            specs.extend(f.spec(VersionRef::Latest));
            specs.extend(f.versions.keys().filter_map(|n| f.spec(VersionRef::Number(*n))));
        }
        specs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_refs_parse() {
        assert_eq!(VersionRef::parse("$LATEST"), Some(VersionRef::Latest));
        assert_eq!(VersionRef::parse("12"), Some(VersionRef::Number(12)));
        assert_eq!(VersionRef::parse("0"), None);
        assert_eq!(VersionRef::parse("+1"), None);
        assert_eq!(VersionRef::parse("prod"), None);
    }

    #[test]
    fn weighted_pick() {
        let f = FunctionRecord {
            name: "f".into(),
            description: String::new(),
            code_sha256: String::new(),
            code_size: 0,
            config: FunctionConfig::default(),
            created: String::new(),
            last_modified: String::new(),
            versions: BTreeMap::new(),
            aliases: BTreeMap::new(),
            next_version: 1,
        };
        let t = Target { function: &f, primary: VersionRef::Number(2), additional: Some((1, 0.1)) };
        assert_eq!(t.pick(|| 0.05), VersionRef::Number(1));
        assert_eq!(t.pick(|| 0.5), VersionRef::Number(2));
        let single = Target { additional: None, ..t };
        assert_eq!(single.pick(|| unreachable!("no roll without a choice")), VersionRef::Number(2));
    }
}
