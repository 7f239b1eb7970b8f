//! Manual approval: the action waits until `meridian approve` (from any process) records a
//! decision in the journal, or until it expires (7 days, or the action's timeout).

use super::{ActionContext, ActionOutput, ActionProvider};
use futures::future::BoxFuture;
use meridian_pipeline::model::Action;
use std::time::Duration;

pub struct ManualApproval;

impl ActionProvider for ManualApproval {
    fn safe_to_repeat(&self, _: &Action) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>> {
        Box::pin(async move {
            let short = &ctx.execution_id[..8.min(ctx.execution_id.len())];
            ctx.log.line(&format!(
                "waiting for approval: run `meridian approve {short} {}` (add --reject to reject)",
                ctx.action.name
            ));
            if let Some(data) = ctx.action.config("CustomData") {
                ctx.log.line(&format!("note for the approver: {data}"));
            }
            let mut cancel = ctx.cancel.clone();
            loop {
                let decision = ctx
                    .journal
                    .approval(&ctx.execution_id, ctx.stage_idx, &ctx.action.name, ctx.attempt)
                    .map_err(|e| e.to_string())?;
                if let Some((approved, comment)) = decision {
                    let comment = comment.map(|c| format!(": {c}")).unwrap_or_default();
                    if approved {
                        ctx.log.line(&format!("approved{comment}"));
                        let mut out = ActionOutput::default();
                        out.variables.insert("ApprovalStatus".into(), "Approved".into());
                        return Ok(out);
                    }
                    return Err(format!("rejected{comment}"));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = cancel.wait_for(|c| *c) => return Err("the approval was abandoned".into()),
                }
            }
        })
    }
}
