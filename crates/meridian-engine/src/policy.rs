//! The execution's deploy policy, which spans regions and so belongs to the execution, not to
//! the action that deploys one region: a deploy waits for its region's deployment window and for
//! a slot among `max-parallel-regions`, and when a deploy fails (or a sibling region of the same
//! execution has failed), rollback policy `execution` puts every region this execution made live
//! back on its previous release. The driver applies it around every action whose provider
//! [`deploys`](crate::providers::ActionProvider::deploys).

use crate::ledger;
use crate::providers::cloudformation::CloudFormation;
use crate::providers::ActionContext;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Regions of one execution deploying at once (`max-parallel-regions`).
#[derive(Default)]
pub struct Slots(Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>);

impl Slots {
    /// Waits for a slot of the action's execution when it has a limit; the slot is held until
    /// the permit is dropped.
    pub async fn take(&self, ctx: &ActionContext) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, String> {
        let Some(n) = ctx.env.max_parallel_regions else {
            return Ok(None);
        };
        let sem = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ctx.execution_id.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(n.max(1))))
            .clone();
        if sem.available_permits() == 0 {
            ctx.log.line(&format!(
                "waiting: {n} region(s) of this execution are deploying (max-parallel-regions)"
            ));
        }
        Ok(Some(sem.acquire_owned().await.map_err(|e| e.to_string())?))
    }
}

/// After a deploy: with rollback policy `execution`, a failed deploy, or a sibling region of the
/// same execution that failed while this one deployed, puts every region back.
pub async fn after_deploy(ctx: &ActionContext, failed: bool) {
    if !ctx.env.rollback_all_regions {
        return;
    }
    let sibling_failed = ctx.journal.releases(Some(&ctx.pipeline)).is_ok_and(|rows| {
        rows.iter()
            .any(|r| r.status == "failed" && r.execution_id.as_deref() == Some(ctx.execution_id.as_str()))
    });
    if failed || sibling_failed {
        roll_back_execution(ctx).await;
    }
}

/// Waits until the region's deployment window is open, or an operator skips it. A closed
/// window is not a failure: the action waits and says when the window opens.
pub async fn wait_for_window(ctx: &ActionContext) -> Result<(), String> {
    let Some(w) = ctx.env.windows.get(&ctx.region) else {
        return Ok(());
    };
    let window = meridian_delivery::window::Window::new(&w.timezone, &w.hours, &w.days, &w.freeze)
        .map_err(|e| format!("the deployment window of {}: {e}", ctx.region))?;
    let describe = format!(
        "{} {}{}",
        w.timezone,
        w.hours,
        if w.days.is_empty() {
            String::new()
        } else {
            format!(" {}", w.days.join(","))
        }
    );
    let mut waiting = false;
    let mut cancel = ctx.cancel.clone();
    loop {
        // The engine's clock: a test (or a replay) decides what time it is.
        let now = ctx.journal.now();
        if window.is_open(now) {
            break;
        }
        if ctx.env.skip_windows {
            ctx.log.line(&format!(
                "the deployment window of {} ({describe}) is closed; deploying anyway (--skip-windows)",
                ctx.region
            ));
            break;
        }
        let skipped = ctx
            .journal
            .approval(&ctx.execution_id, ctx.stage_idx, &ctx.action.name, ctx.attempt)
            .map_err(|e| e.to_string())?;
        if skipped.is_some_and(|(ok, _)| ok) {
            ctx.log.line(&format!(
                "the deployment window of {} was skipped by an operator (meridian approve --skip-window)",
                ctx.region
            ));
            break;
        }
        if !waiting {
            waiting = true;
            let opens = window
                .next_opening(now)
                .map(|t| {
                    format!(
                        "it opens at {} ({})",
                        window.local_time(t),
                        meridian_core::clock::format_rfc3339(t / 1000)
                    )
                })
                .unwrap_or_else(|| "it never opens again (check its days and freeze dates)".into());
            let msg = format!(
                "waiting: the deployment window of {} ({describe}) is closed; {opens}. To deploy now: meridian approve {} {} --skip-window",
                ctx.region, ctx.execution_id, ctx.action.name
            );
            ctx.log.line(&msg);
            let _ = ctx.journal.set_waiting(&ctx.execution_id, Some(&msg));
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = cancel.changed() => {
                if *cancel.borrow() {
                    return Err("stopped while waiting for the deployment window".into());
                }
            }
        }
    }
    if waiting {
        let _ = ctx.journal.set_waiting(&ctx.execution_id, None);
    }
    Ok(())
}

/// Rollback policy "every region the execution touched": puts back the previous release of
/// every region this execution made live (the failed region is already back on its own).
pub async fn roll_back_execution(ctx: &ActionContext) {
    let Ok(rows) = ctx.journal.releases(Some(&ctx.pipeline)) else {
        return;
    };
    let mut regions: Vec<String> = rows
        .iter()
        // Releases this execution deployed (not the earlier ones it already put back).
        .filter(|r| {
            r.status == "live" && r.detail.is_none() && r.execution_id.as_deref() == Some(ctx.execution_id.as_str())
        })
        .map(|r| r.region.clone())
        .collect();
    regions.dedup();
    for region in regions {
        match ctx.journal.previous_release(&ctx.pipeline, &region) {
            Ok(Some(prev)) => {
                let log = ctx.log.clone();
                let say: meridian_region::Say = Arc::new(move |s: &str| log.line(s));
                let reason = format!(
                    "rollback policy: execution {} failed in {}",
                    ctx.execution_id, ctx.region
                );
                let stacks = match ctx.regions.get(&region) {
                    Ok(b) => b.stacks.clone(),
                    Err(e) => {
                        ctx.log.line(&format!("error: {e}"));
                        continue;
                    }
                };
                let driver = match ctx.delivery_driver(&region) {
                    Ok(d) => d,
                    Err(e) => {
                        ctx.log.line(&format!("error: {e}"));
                        continue;
                    }
                };
                if let Err(e) = ledger::redeploy(
                    &ctx.journal,
                    stacks.as_ref(),
                    &prev,
                    ctx.stores.get(&region).map(|(bucket, _)| bucket.clone()),
                    CloudFormation::delivery(ctx),
                    &ctx.env.data_dir,
                    &reason,
                    crate::stacks::Progress {
                        say,
                        shifter: Some(driver),
                        delivery: CloudFormation::delivery(ctx),
                    },
                )
                .await
                {
                    ctx.log.line(&format!("error: {e}"));
                }
            }
            Ok(None) => ctx.log.line(&format!(
                "{region}: no earlier release to roll back to (its first release stays)"
            )),
            Err(e) => ctx.log.line(&format!("error: {e}")),
        }
    }
}
