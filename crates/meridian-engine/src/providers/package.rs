//! Meridian's Package action: packages a CloudFormation/SAM template once per region. Every local
//! code path that `aws cloudformation package` would upload is zipped (deterministically) into the
//! region's own artifact store, and `packaged-template-<region>.yaml` references it there.
//! Identical code is stored once per region, by digest.

use super::{ActionContext, ActionOutput, ActionProvider};
use futures::future::BoxFuture;
use meridian_buildspec::package::{self, PackageStore, StoreError, StoredObject};
use meridian_pipeline::model::Action;
use std::io::Write;
use std::sync::Arc;

pub struct Package;

/// The engine's region stores as packaging sees them.
struct Stores {
    stores: Arc<super::RegionStores>,
    tmp: std::path::PathBuf,
    rt: tokio::runtime::Handle,
}

impl PackageStore for Stores {
    fn put(&self, region: &str, bytes: Vec<u8>) -> Result<StoredObject, StoreError> {
        let (bucket, store) = self.stores.get(region).ok_or_else(|| {
            format!("region {region} has no artifact store: add one to the pipeline's artifactStores")
        })?;
        let path = self
            .tmp
            .join(format!("upload-{}", meridian_core::Digest::of(&bytes).hex()));
        std::fs::File::create(&path).and_then(|mut f| f.write_all(&bytes))?;
        let (digest, _) = self.rt.block_on(store.put_file(&path))?;
        let _ = std::fs::remove_file(&path);
        Ok(StoredObject {
            bucket: bucket.clone(),
            key: format!("sha256/{}.zip", digest.hex()),
        })
    }
}

impl ActionProvider for Package {
    fn safe_to_repeat(&self, _: &Action) -> bool {
        // Content-addressed uploads: doing them twice stores nothing new.
        true
    }

    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>> {
        Box::pin(async move {
            let a = &ctx.action;
            let tp = a.config("TemplatePath").unwrap_or("template.yaml");
            let (art, file) = tp
                .split_once("::")
                .ok_or_else(|| format!("TemplatePath `{tp}` is not Artifact::path"))?;
            let dir = ctx
                .inputs
                .iter()
                .find(|(n, _)| n == art)
                .map(|(_, d)| d.clone())
                .ok_or_else(|| format!("TemplatePath reads `{art}`, which is not an input of the action"))?;
            let template = meridian_core::path::confine(&dir, file)
                .map_err(|e| format!("TemplatePath `{tp}` is refused: {e}; name a file inside artifact {art}"))?;
            if !template.is_file() {
                return Err(format!("the template `{file}` is not in artifact {art}"));
            }
            let regions: Vec<String> = match a.config("Regions") {
                Some(r) => r
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                None => ctx.stores.keys().cloned().collect(),
            };
            let Some((_, out)) = ctx.outputs.first().cloned() else {
                return Err("the Package action needs one output artifact".into());
            };
            let stores = Stores {
                stores: ctx.stores.clone(),
                tmp: ctx.work_dir.clone(),
                rt: tokio::runtime::Handle::current(),
            };
            let regions2 = regions.clone();
            let outcome = tokio::task::spawn_blocking(move || package::package(&template, &regions2, &stores, &out))
                .await
                .map_err(|e| format!("packaging failed: {e}"))?
                .map_err(|e| e.to_string())?;
            let mut objects = std::collections::BTreeSet::new();
            for u in &outcome.uploads {
                if objects.insert((u.region.clone(), u.object.key.clone())) {
                    let hexd = u.object.key.trim_start_matches("sha256/").trim_end_matches(".zip");
                    let name = format!("{} code for {} ({})", a.name, u.region, u.reference);
                    ctx.journal
                        .record_object(&ctx.execution_id, &name, &format!("sha256:{hexd}"), 0, &u.region)
                        .map_err(|e| e.to_string())?;
                }
                ctx.log.line(&format!(
                    "{} {}: {} -> s3://{}/{}",
                    u.region,
                    u.reference,
                    u.local_path.display(),
                    u.object.bucket,
                    u.object.key
                ));
            }
            for (region, path) in &outcome.templates {
                ctx.log.line(&format!(
                    "{region}: wrote {}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
            let mut o = ActionOutput::default();
            o.variables.insert("Regions".into(), regions.join(",").into());
            o.variables
                .insert("UploadedObjects".into(), objects.len().to_string().into());
            Ok(o)
        })
    }
}
