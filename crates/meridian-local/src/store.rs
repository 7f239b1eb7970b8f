//! The registry of functions, versions and aliases of every local region, in one SQLite file
//! (`<data-dir>/local-lambda.sqlite`, WAL mode). Every read goes to the database, so a `meridian`
//! process sees what another one created a moment ago.

use crate::error::{LambdaError, Result};
use crate::metrics::{Histogram, MetricKey, PendingBucket};
use crate::model::{validate_alias_name, Alias, FunctionVersion, LATEST};
use meridian_core::clock::EpochMillis;
use meridian_core::{Digest, RegionId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    cache: Mutex<ReadCache>,
}

/// Rows read on the invoke path, kept until the database changes. Another process's commit
/// changes `PRAGMA data_version`; this connection's own writes clear the cache directly.
#[derive(Default)]
struct ReadCache {
    data_version: i64,
    versions: HashMap<(String, String, String), Option<FunctionVersion>>,
    functions: HashMap<(String, String), Option<Option<u32>>>,
    aliases: HashMap<(String, String, String), Option<Alias>>,
}

impl ReadCache {
    fn clear(&mut self) {
        self.versions.clear();
        self.functions.clear();
        self.aliases.clear();
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lambda_functions (
    region TEXT NOT NULL, name TEXT NOT NULL,
    reserved_concurrency INTEGER,
    next_version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (region, name));
CREATE TABLE IF NOT EXISTS lambda_versions (
    region TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    runtime TEXT NOT NULL, handler TEXT NOT NULL, memory_size INTEGER NOT NULL,
    timeout INTEGER NOT NULL, environment TEXT NOT NULL, description TEXT NOT NULL,
    code_sha256 TEXT NOT NULL, code_size INTEGER NOT NULL, last_modified INTEGER NOT NULL,
    revision_id TEXT NOT NULL,
    PRIMARY KEY (region, name, version));
CREATE TABLE IF NOT EXISTS lambda_aliases (
    region TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL,
    function_version TEXT NOT NULL, weights TEXT NOT NULL, description TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    PRIMARY KEY (region, name, alias));
CREATE TABLE IF NOT EXISTS lambda_metric_seconds (
    region TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL, second INTEGER NOT NULL,
    invocations INTEGER NOT NULL, errors INTEGER NOT NULL, throttles INTEGER NOT NULL,
    max_concurrency INTEGER NOT NULL, histogram TEXT NOT NULL,
    PRIMARY KEY (region, name, qualifier, second));
";

const VERSION_COLS: &str = "region, name, version, runtime, handler, memory_size, timeout, environment, \
     description, code_sha256, code_size, last_modified, revision_id";

impl Store {
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| LambdaError::io("create the data directory", data_dir, e))?;
        let path = data_dir.join("local-lambda.sqlite");
        let err = |source| LambdaError::Store {
            path: path.clone(),
            source,
        };
        let conn = meridian_engine::journal::open_store(
            &path,
            Duration::from_secs(10),
            SCHEMA,
            "the local regions' functions, versions, aliases and metrics are then gone; redeploy the stacks to recreate them",
        )
        .map_err(LambdaError::Service)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        Ok(Store {
            path,
            conn: Mutex::new(conn),
            cache: Mutex::new(ReadCache::default()),
        })
    }

    /// Runs `f` on the connection. Anything may have been written, so the read cache is dropped.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let result = f(&mut conn).map_err(|source| LambdaError::Store {
            path: self.path.clone(),
            source,
        });
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        result
    }

    /// A read through the cache, valid while no process has committed a change.
    fn cached<K: std::hash::Hash + Eq, V: Clone>(
        &self,
        pick: impl Fn(&mut ReadCache) -> &mut HashMap<K, V>,
        key: K,
        load: impl FnOnce(&Connection) -> rusqlite::Result<V>,
    ) -> Result<V> {
        let err = |source| LambdaError::Store {
            path: self.path.clone(),
            source,
        };
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(err)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.data_version != version {
            cache.clear();
            cache.data_version = version;
        }
        if let Some(v) = pick(&mut cache).get(&key) {
            return Ok(v.clone());
        }
        let v = load(&conn).map_err(err)?;
        pick(&mut cache).insert(key, v.clone());
        Ok(v)
    }

    /// Inserts a new function (its `$LATEST`); a conflict if the name is taken in the region.
    pub fn create_function(&self, v: &FunctionVersion, reserved: Option<u32>) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO lambda_functions (region, name, reserved_concurrency) VALUES (?1, ?2, ?3)",
                params![v.region.as_str(), v.function_name, reserved],
            )?;
            if inserted == 0 {
                return Ok(false);
            }
            insert_version(&tx, v)?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// Replaces `$LATEST`.
    pub fn put_latest(&self, v: &FunctionVersion) -> Result<()> {
        debug_assert_eq!(v.version, LATEST);
        self.with(|c| {
            c.execute(
                "DELETE FROM lambda_versions WHERE region = ?1 AND name = ?2 AND version = ?3",
                params![v.region.as_str(), v.function_name, LATEST],
            )?;
            insert_version(c, v)
        })
    }

    pub fn set_reserved_concurrency(&self, region: &RegionId, name: &str, reserved: Option<u32>) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE lambda_functions SET reserved_concurrency = ?3 WHERE region = ?1 AND name = ?2",
                params![region.as_str(), name, reserved],
            )? > 0)
        })
    }

    /// `None` if the function does not exist; `Some(reserved concurrency)` otherwise.
    pub fn function_exists(&self, region: &RegionId, name: &str) -> Result<Option<Option<u32>>> {
        let key = (region.as_str().to_string(), name.to_string());
        self.cached(
            |c| &mut c.functions,
            key,
            |c| {
                c.query_row(
                    "SELECT reserved_concurrency FROM lambda_functions WHERE region = ?1 AND name = ?2",
                    params![region.as_str(), name],
                    |r| r.get::<_, Option<u32>>(0),
                )
                .optional()
            },
        )
    }

    pub fn get_version(&self, region: &RegionId, name: &str, version: &str) -> Result<Option<FunctionVersion>> {
        let key = (region.as_str().to_string(), name.to_string(), version.to_string());
        self.cached(
            |c| &mut c.versions,
            key,
            |c| {
                c.prepare_cached(&format!(
                    "SELECT {VERSION_COLS} FROM lambda_versions WHERE region = ?1 AND name = ?2 AND version = ?3"
                ))?
                .query_row(params![region.as_str(), name, version], row_to_version)
                .optional()
            },
        )
    }

    /// `$LATEST` first, then published versions in number order.
    pub fn list_versions(&self, region: &RegionId, name: &str) -> Result<Vec<FunctionVersion>> {
        let mut all = self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {VERSION_COLS} FROM lambda_versions WHERE region = ?1 AND name = ?2"
            ))?;
            let rows = st.query_map(params![region.as_str(), name], row_to_version)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        all.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(0));
        Ok(all)
    }

    /// The `$LATEST` of every function in a region, by name.
    pub fn list_functions(&self, region: &RegionId) -> Result<Vec<FunctionVersion>> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {VERSION_COLS} FROM lambda_versions WHERE region = ?1 AND version = ?2 ORDER BY name"
            ))?;
            let rows = st.query_map(params![region.as_str(), LATEST], row_to_version)?;
            rows.collect()
        })
    }

    /// Publishes `$LATEST` as the next version number, unless the newest published version already
    /// has the same code and configuration (then that one is returned, as AWS does).
    pub fn publish_version(
        &self,
        region: &RegionId,
        name: &str,
        description: Option<&str>,
        now: EpochMillis,
        revision: String,
    ) -> Result<Option<FunctionVersion>> {
        let versions = self.list_versions(region, name)?;
        let Some(latest) = versions.iter().find(|v| v.version == LATEST).cloned() else {
            return Ok(None);
        };
        if let Some(newest) = versions.iter().rev().find(|v| v.version != LATEST) {
            let same = newest.code_sha256 == latest.code_sha256
                && newest.runtime == latest.runtime
                && newest.handler == latest.handler
                && newest.memory_size == latest.memory_size
                && newest.timeout == latest.timeout
                && newest.environment == latest.environment;
            if same {
                return Ok(Some(newest.clone()));
            }
        }
        self.with(|c| {
            let tx = c.transaction()?;
            let n: i64 = tx.query_row(
                "SELECT next_version FROM lambda_functions WHERE region = ?1 AND name = ?2",
                params![region.as_str(), name],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE lambda_functions SET next_version = ?3 WHERE region = ?1 AND name = ?2",
                params![region.as_str(), name, n + 1],
            )?;
            let mut v = latest.clone();
            v.version = n.to_string();
            v.last_modified = now;
            v.revision_id = revision;
            if let Some(d) = description {
                v.description = d.to_string();
            }
            insert_version(&tx, &v)?;
            tx.commit()?;
            Ok(Some(v))
        })
    }

    pub fn delete_function(&self, region: &RegionId, name: &str) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM lambda_functions WHERE region = ?1 AND name = ?2",
                params![region.as_str(), name],
            )?;
            for table in ["lambda_versions", "lambda_aliases"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE region = ?1 AND name = ?2"),
                    params![region.as_str(), name],
                )?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
    }

    pub fn get_alias(&self, region: &RegionId, name: &str, alias: &str) -> Result<Option<Alias>> {
        if validate_alias_name(alias).is_err() {
            return Ok(None);
        }
        let key = (region.as_str().to_string(), name.to_string(), alias.to_string());
        self.cached(
            |c| &mut c.aliases,
            key,
            |c| {
                c.prepare_cached(
                    "SELECT region, name, alias, function_version, weights, description, revision_id \
                 FROM lambda_aliases WHERE region = ?1 AND name = ?2 AND alias = ?3",
                )?
                .query_row(params![region.as_str(), name, alias], row_to_alias)
                .optional()
            },
        )
    }

    pub fn list_aliases(&self, region: &RegionId, name: &str) -> Result<Vec<Alias>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT region, name, alias, function_version, weights, description, revision_id \
                 FROM lambda_aliases WHERE region = ?1 AND name = ?2 ORDER BY alias",
            )?;
            let rows = st.query_map(params![region.as_str(), name], row_to_alias)?;
            rows.collect()
        })
    }

    /// Inserts (`create = true`, false if it exists) or replaces (false if it is missing) an alias.
    pub fn put_alias(&self, a: &Alias, create: bool) -> Result<bool> {
        let weights = serde_json::to_string(&a.additional_version_weights).expect("weights serialize");
        self.with(|c| {
            let sql = if create {
                "INSERT OR IGNORE INTO lambda_aliases (region, name, alias, function_version, weights, description, revision_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            } else {
                "UPDATE lambda_aliases SET function_version = ?4, weights = ?5, description = ?6, revision_id = ?7 \
                 WHERE region = ?1 AND name = ?2 AND alias = ?3"
            };
            Ok(c.execute(
                sql,
                params![a.region.as_str(), a.function_name, a.name, a.function_version, weights, a.description, a.revision_id],
            )? > 0)
        })
    }

    /// Adds pending metric buckets to the stored ones.
    pub fn merge_metrics(&self, pending: Vec<(MetricKey, PendingBucket)>) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            for (k, b) in pending {
                let existing: Option<(i64, i64, i64, i64, String)> = tx
                    .query_row(
                        "SELECT invocations, errors, throttles, max_concurrency, histogram FROM lambda_metric_seconds \
                         WHERE region = ?1 AND name = ?2 AND qualifier = ?3 AND second = ?4",
                        params![k.region, k.function, k.qualifier, k.second],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                    )
                    .optional()?;
                let mut merged = b;
                if let Some((inv, err, thr, conc, hist)) = existing {
                    merged.invocations += inv as u64;
                    merged.errors += err as u64;
                    merged.throttles += thr as u64;
                    merged.max_concurrency = merged.max_concurrency.max(conc as u32);
                    merged.durations.merge(&Histogram::from_json(&hist));
                }
                tx.execute(
                    "INSERT OR REPLACE INTO lambda_metric_seconds \
                     (region, name, qualifier, second, invocations, errors, throttles, max_concurrency, histogram) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        k.region,
                        k.function,
                        k.qualifier,
                        k.second,
                        merged.invocations as i64,
                        merged.errors as i64,
                        merged.throttles as i64,
                        merged.max_concurrency,
                        merged.durations.to_json()
                    ],
                )?;
            }
            tx.commit()
        })
    }

    /// Stored one-second buckets for one qualifier (`""` = the whole function), in `[since, until)`.
    pub fn read_metrics(
        &self,
        region: &RegionId,
        function: &str,
        qualifier: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, PendingBucket)>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT second, invocations, errors, throttles, max_concurrency, histogram FROM lambda_metric_seconds \
                 WHERE region = ?1 AND name = ?2 AND qualifier = ?3 AND second >= ?4 AND second < ?5 ORDER BY second",
            )?;
            let rows = st.query_map(params![region.as_str(), function, qualifier, since, until], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    PendingBucket {
                        invocations: r.get::<_, i64>(1)? as u64,
                        errors: r.get::<_, i64>(2)? as u64,
                        throttles: r.get::<_, i64>(3)? as u64,
                        max_concurrency: r.get::<_, i64>(4)? as u32,
                        durations: Histogram::from_json(&r.get::<_, String>(5)?),
                    },
                ))
            })?;
            rows.collect()
        })
    }
}

fn insert_version(c: &Connection, v: &FunctionVersion) -> rusqlite::Result<()> {
    c.execute(
        &format!("INSERT INTO lambda_versions ({VERSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        params![
            v.region.as_str(),
            v.function_name,
            v.version,
            v.runtime,
            v.handler,
            v.memory_size,
            v.timeout,
            serde_json::to_string(&v.environment).expect("env serializes"),
            v.description,
            v.code_sha256.hex(),
            v.code_size as i64,
            v.last_modified,
            v.revision_id
        ],
    )?;
    Ok(())
}

fn conversion_error(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn row_to_version(r: &rusqlite::Row<'_>) -> rusqlite::Result<FunctionVersion> {
    let region: String = r.get(0)?;
    let env: String = r.get(7)?;
    let sha: String = r.get(9)?;
    Ok(FunctionVersion {
        region: RegionId::new(&region).map_err(|e| conversion_error(0, e))?,
        function_name: r.get(1)?,
        version: r.get(2)?,
        runtime: r.get(3)?,
        handler: r.get(4)?,
        memory_size: r.get(5)?,
        timeout: r.get(6)?,
        environment: serde_json::from_str::<BTreeMap<String, String>>(&env).map_err(|e| conversion_error(7, e))?,
        description: r.get(8)?,
        code_sha256: sha.parse::<Digest>().map_err(|e| conversion_error(9, e))?,
        code_size: r.get::<_, i64>(10)? as u64,
        last_modified: r.get(11)?,
        revision_id: r.get(12)?,
    })
}

fn row_to_alias(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alias> {
    let region: String = r.get(0)?;
    let weights: String = r.get(4)?;
    Ok(Alias {
        region: RegionId::new(&region).map_err(|e| conversion_error(0, e))?,
        function_name: r.get(1)?,
        name: r.get(2)?,
        function_version: r.get(3)?,
        additional_version_weights: serde_json::from_str(&weights).map_err(|e| conversion_error(4, e))?,
        description: r.get(5)?,
        revision_id: r.get(6)?,
    })
}
