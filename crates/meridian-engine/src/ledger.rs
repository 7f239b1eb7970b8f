//! The release ledger: for every pipeline, region and stack, which release is live (artifact
//! digest, template digest, function versions) and what was deployed before. A row is written
//! for every attempt to deploy a release to a region: `live` when it became the region's
//! release, `failed` when the region stayed on its previous one, `superseded` once another
//! release went live after it, `rolled-back` when it was live and an earlier one was put back.
//!
//! Rows keep the template and parameters they were deployed with, so that `meridian rollback`
//! can deploy an earlier release again, through the same traffic shifting and judging.

use crate::journal::{Journal, JournalError, Result};
use crate::stacks::{DeliveryOptions, LiveFunction, StackDeployer, StackOutcome, StackRequest};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleaseRow {
    pub seq: i64,
    pub pipeline: String,
    pub region: String,
    pub stack: String,
    /// `rel-` and the first 12 hex digits of the deployed artifact's digest.
    pub release_id: String,
    pub execution_id: Option<String>,
    pub artifact_digest: Option<String>,
    pub template_digest: String,
    pub functions: Vec<LiveFunction>,
    pub status: String,
    pub detail: Option<String>,
    pub at: i64,
    #[serde(skip)]
    pub template: String,
    #[serde(skip)]
    pub parameters: BTreeMap<String, String>,
    #[serde(skip)]
    pub capabilities: Vec<String>,
    #[serde(skip)]
    pub artifact_root: Option<PathBuf>,
}

/// What a deploy attempt was, for [`Journal::record_release`].
pub struct NewRelease<'a> {
    pub pipeline: &'a str,
    pub region: &'a str,
    pub stack: &'a str,
    pub execution_id: Option<&'a str>,
    pub artifact_digest: Option<&'a str>,
    pub template: &'a str,
    pub parameters: &'a BTreeMap<String, String>,
    pub capabilities: &'a [String],
    pub artifact_root: Option<&'a Path>,
    pub functions: &'a [LiveFunction],
    /// `None`: it went live. `Some(why)`: it failed and the region kept its release.
    pub failure: Option<&'a str>,
    /// The release id, when it is known (a redeploy of an earlier release keeps its id).
    pub release_id: Option<&'a str>,
    pub detail: Option<&'a str>,
}

pub fn release_id_of(artifact_digest: Option<&str>, template_digest: &str) -> String {
    let d = artifact_digest.unwrap_or(template_digest);
    let hex = d.rsplit(':').next().unwrap_or(d);
    format!("rel-{}", &hex[..hex.len().min(12)])
}

pub fn digest_of(text: &str) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(text.as_bytes())))
}

const COLS: &str = "seq, pipeline, region, stack, release_id, execution_id, artifact_digest, template_digest, functions, status, detail, at, template, parameters, capabilities, artifact_root";

fn row(r: &rusqlite::Row) -> rusqlite::Result<ReleaseRow> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(ReleaseRow {
        seq: r.get(0)?,
        pipeline: r.get(1)?,
        region: r.get(2)?,
        stack: r.get(3)?,
        release_id: r.get(4)?,
        execution_id: r.get(5)?,
        artifact_digest: r.get(6)?,
        template_digest: r.get(7)?,
        functions: serde_json::from_str(&json(8)?).unwrap_or_default(),
        status: r.get(9)?,
        detail: r.get(10)?,
        at: r.get(11)?,
        template: r.get(12)?,
        parameters: serde_json::from_str(&json(13)?).unwrap_or_default(),
        capabilities: serde_json::from_str(&json(14)?).unwrap_or_default(),
        artifact_root: r.get::<_, Option<String>>(15)?.map(PathBuf::from),
    })
}

impl Journal {
    /// Records a deploy attempt; when it went live, the region's previous live release becomes
    /// `superseded` (or `rolled-back` when `rolled_back` is set) in the same transaction.
    pub fn record_release(&self, n: &NewRelease, rolled_back: bool) -> Result<ReleaseRow> {
        let template_digest = digest_of(n.template);
        let id = n
            .release_id
            .map(String::from)
            .unwrap_or_else(|| release_id_of(n.artifact_digest, &template_digest));
        let status = if n.failure.is_some() { "failed" } else { "live" };
        let detail = n.failure.or(n.detail);
        let seq = self.write(|tx| {
            if n.failure.is_none() {
                tx.execute(
                    "UPDATE releases SET status = ?4 WHERE pipeline = ?1 AND region = ?2 AND stack = ?3 AND status = 'live'",
                    params![
                        n.pipeline,
                        n.region,
                        n.stack,
                        if rolled_back { "rolled-back" } else { "superseded" }
                    ],
                )?;
            }
            tx.execute(
                "INSERT INTO releases (pipeline, region, stack, release_id, execution_id, artifact_digest, template_digest, functions, template, parameters, capabilities, artifact_root, status, detail, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    n.pipeline,
                    n.region,
                    n.stack,
                    id,
                    n.execution_id,
                    n.artifact_digest,
                    template_digest,
                    serde_json::to_string(n.functions).unwrap_or_default(),
                    n.template,
                    serde_json::to_string(n.parameters).unwrap_or_default(),
                    serde_json::to_string(n.capabilities).unwrap_or_default(),
                    n.artifact_root.map(|p| p.to_string_lossy().into_owned()),
                    status,
                    detail,
                    self.now()
                ],
            )?;
            let seq = tx.last_insert_rowid();
            if let Some(exec) = n.execution_id {
                let what = match n.failure {
                    None => format!("{id} live in {} ({})", n.region, n.stack),
                    Some(why) => format!("{id} failed in {}: {why}", n.region),
                };
                self.event(tx, exec, "Release", None, None, Some(&what))?;
            }
            Ok(seq)
        })?;
        self.release(seq)?
            .ok_or_else(|| JournalError::Corrupt(format!("release row {seq} vanished")))
    }

    pub fn release(&self, seq: i64) -> Result<Option<ReleaseRow>> {
        self.read(|c| {
            Ok(
                c.query_row(&format!("SELECT {COLS} FROM releases WHERE seq = ?1"), [seq], row)
                    .optional()?,
            )
        })
    }

    /// Every row of a pipeline (all pipelines with `None`), oldest first.
    pub fn releases(&self, pipeline: Option<&str>) -> Result<Vec<ReleaseRow>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM releases WHERE ?1 IS NULL OR pipeline = ?1 ORDER BY seq"
            ))?;
            let rows = st.query_map([pipeline], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// The live release of every region of a pipeline, by region.
    pub fn live_releases(&self, pipeline: &str) -> Result<BTreeMap<String, ReleaseRow>> {
        Ok(self
            .releases(Some(pipeline))?
            .into_iter()
            .filter(|r| r.status == "live")
            .map(|r| (r.region.clone(), r))
            .collect())
    }

    /// The release a region had live before its current one: the newest earlier row that went
    /// live with another release id.
    pub fn previous_release(&self, pipeline: &str, region: &str) -> Result<Option<ReleaseRow>> {
        let rows: Vec<ReleaseRow> = self
            .releases(Some(pipeline))?
            .into_iter()
            .filter(|r| r.region == region)
            .collect();
        let Some(live) = rows.iter().rev().find(|r| r.status == "live") else {
            return Ok(None);
        };
        Ok(rows
            .iter()
            .rev()
            .filter(|r| r.seq < live.seq && r.release_id != live.release_id)
            .find(|r| matches!(r.status.as_str(), "superseded" | "rolled-back"))
            .cloned())
    }
}

/// Deploys an earlier release to its region again (same template and parameters), through the
/// stack deployer and so through traffic shifting and judging, and records it live.
/// `template_bucket` is the region's artifact bucket, through which AWS regions send a template
/// too large for the request.
#[allow(clippy::too_many_arguments)]
pub async fn redeploy(
    journal: &Journal,
    stacks: &dyn StackDeployer,
    to: &ReleaseRow,
    template_bucket: Option<String>,
    delivery: DeliveryOptions,
    data_dir: &Path,
    reason: &str,
    progress: crate::stacks::Progress,
) -> std::result::Result<ReleaseRow, String> {
    let log = progress.say.clone();
    let dir = data_dir.join("ledger");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // The pipeline's name is user-written: one safe component, never a path.
    let path = dir.join(meridian_core::path::safe_component(&format!(
        "{}-{}-{}.template",
        to.pipeline, to.region, to.seq
    )));
    std::fs::write(&path, &to.template).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let req = StackRequest {
        region: to.region.clone(),
        stack_name: to.stack.clone(),
        template_path: path,
        parameters: to.parameters.clone(),
        capabilities: to.capabilities.clone(),
        artifact_root: to.artifact_root.clone(),
        template_bucket,
        delivery,
        ..Default::default()
    };
    log(&format!(
        "{}: rolling back {} to {} ({reason})",
        to.region, to.stack, to.release_id
    ));
    let outcome = stacks.deploy(&req, progress).await;
    let functions = crate::retry::retrying(|| stacks.live_functions(&to.region, &to.stack))
        .await
        .unwrap_or_default();
    let exec = req.delivery.execution_id.clone();
    let n = NewRelease {
        pipeline: &to.pipeline,
        region: &to.region,
        stack: &to.stack,
        execution_id: exec.as_deref(),
        artifact_digest: to.artifact_digest.as_deref(),
        template: &to.template,
        parameters: &to.parameters,
        capabilities: &to.capabilities,
        artifact_root: to.artifact_root.as_deref(),
        functions: &functions,
        failure: None,
        release_id: Some(&to.release_id),
        detail: Some(reason),
    };
    match outcome {
        Ok(StackOutcome::Applied(_)) | Ok(StackOutcome::NoChanges(_)) => {
            journal.record_release(&n, true).map_err(|e| e.to_string())
        }
        Err(e) => {
            let why = format!("rollback to {} failed: {e}", to.release_id);
            let _ = journal.record_release(
                &NewRelease {
                    failure: Some(&why),
                    ..n
                },
                false,
            );
            Err(why)
        }
    }
}
