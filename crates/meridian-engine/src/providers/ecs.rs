//! CodePipeline's `ECS` deploy action (category Deploy, owner AWS): the input artifact's image
//! definitions file (`FileName`, default `imagedefinitions.json`: `[{"name": container,
//! "imageUri": image}]`) moves service `ServiceName` of cluster `ClusterName` to those images,
//! through the action region's [`meridian_region::services::ContainerServices`], waiting up to
//! `DeploymentTimeout` minutes (default 60, at most 3600) for it to be stable.

use super::{ActionContext, ActionOutput, ActionProvider};
use futures::future::BoxFuture;
use meridian_pipeline::model::Action;
use meridian_region::services::ImageDeploy;
use std::sync::Arc;
use std::time::Duration;

pub struct Ecs;

/// The largest image definitions file read (it names a few images).
pub const MAX_IMAGE_DEFINITIONS: u64 = 1024 * 1024;

/// Reads an image definitions file: every entry a container name and an image URI.
pub fn image_definitions(file: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!("{file} is not JSON ({e}): write `[{{\"name\": \"<container>\", \"imageUri\": \"<image>\"}}]`")
    })?;
    let entries = v
        .as_array()
        .ok_or_else(|| format!("{file} must be a JSON list of {{\"name\", \"imageUri\"}} objects"))?;
    if entries.is_empty() {
        return Err(format!(
            "{file} names no image: add `{{\"name\": \"<container>\", \"imageUri\": \"<image>\"}}`"
        ));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let field = |k: &str| {
                e.get(k)
                    .and_then(serde_json::Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| format!("entry {} of {file} has no `{k}` (a string)", i + 1))
            };
            Ok((field("name")?, field("imageUri")?))
        })
        .collect()
}

impl ActionProvider for Ecs {
    fn safe_to_repeat(&self, _: &Action) -> bool {
        // Registering a revision again and updating the service to it converges on the images.
        true
    }

    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>> {
        Box::pin(async move {
            let a = &ctx.action;
            let cluster = a.config("ClusterName").ok_or("the ECS action needs ClusterName")?;
            let service = a.config("ServiceName").ok_or("the ECS action needs ServiceName")?;
            let file = a.config("FileName").unwrap_or("imagedefinitions.json");
            let minutes: u64 = match a.config("DeploymentTimeout") {
                Some(t) => t
                    .parse()
                    .ok()
                    .filter(|m| (1..=3600).contains(m))
                    .ok_or_else(|| format!("DeploymentTimeout `{t}` must be a number of minutes from 1 to 3600"))?,
                None => 60,
            };
            let (art, dir) = ctx
                .inputs
                .first()
                .ok_or("the ECS action needs an input artifact holding the image definitions file")?;
            let path = meridian_core::path::confine(dir, file)
                .map_err(|e| format!("FileName `{file}` is refused: {e}; name a file inside artifact {art}"))?;
            // An image definitions file names a few images: a larger one is not read into memory.
            let text = meridian_pipeline::source::read_text(&path, MAX_IMAGE_DEFINITIONS)
                .map_err(|e| format!("cannot read {file} from artifact {art}: {e}"))?;
            let images = image_definitions(file, &text)?;
            let req = ImageDeploy {
                region: ctx.region.clone(),
                cluster: cluster.to_string(),
                service: service.to_string(),
                images,
                timeout: Duration::from_secs(minutes * 60),
            };
            let backend = ctx.regions.get(&ctx.region).map_err(|e| e.to_string())?;
            let log = ctx.log.clone();
            let say: meridian_region::Say = Arc::new(move |l: &str| log.line(l));
            let revision = backend
                .services
                .deploy_images(&req, say)
                .await
                .map_err(|e| e.to_string())?;
            let mut o = ActionOutput::default();
            o.variables.insert("TaskDefinitionArn".into(), revision.into());
            Ok(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_definitions_are_read_as_codepipeline_writes_them() {
        assert_eq!(
            image_definitions(
                "f",
                r#"[{"name": "web", "imageUri": "r/web:2"}, {"name": "log", "imageUri": "r/log:1"}]"#
            )
            .unwrap(),
            vec![
                ("web".to_string(), "r/web:2".to_string()),
                ("log".to_string(), "r/log:1".to_string())
            ]
        );
        assert!(image_definitions("f", "{}").unwrap_err().contains("JSON list"));
        assert!(image_definitions("f", "[]").unwrap_err().contains("names no image"));
        assert!(image_definitions("f", r#"[{"name": "web"}]"#)
            .unwrap_err()
            .contains("entry 1 of f has no `imageUri`"));
        assert!(image_definitions("f", "nope").unwrap_err().contains("is not JSON"));
    }
}
