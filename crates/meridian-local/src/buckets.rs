//! Local buckets: where a local region keeps what S3 keeps on AWS. A bucket is a directory
//! `<root>/s3/<bucket>` that belongs to the one region that created it (bucket names are global,
//! as on S3); Meridian's own `Local` store type is any directory. Artifact stores, packaged code
//! and `stack deploy` all use these.

use meridian_engine::artifacts::ObjectArtifactStore;
use meridian_region::artifacts::{ArtifactError, ArtifactStore, ArtifactStores, StoreLocation};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a store's objects live locally: a `Local` store's path (relative to `root`), or, for an
/// S3 bucket, `s3/<bucket>` under `root`.
pub fn store_root(root: &Path, store_type: &str, location: &str) -> PathBuf {
    match store_type {
        "Local" if Path::new(location).is_absolute() => PathBuf::from(location),
        "Local" => root.join(location),
        // A bucket name is one path component, whatever it holds.
        _ => root.join("s3").join(meridian_core::path::safe_component(location)),
    }
}

/// The file in a local bucket's directory that names the region it belongs to.
pub(crate) const BUCKET_REGION_FILE: &str = ".meridian-bucket-region";

/// Records that a local bucket belongs to `region`; a bucket already claimed by another region is
/// an error, as S3 refuses to create a bucket whose name is taken.
pub fn claim_bucket(dir: &Path, region: &str) -> Result<(), String> {
    if let Some(owner) = bucket_region(dir) {
        if owner != region {
            return Err(format!(
                "bucket `{}` belongs to region {owner}, not {region}: each region needs its own artifact bucket",
                dir.file_name().and_then(|n| n.to_str()).unwrap_or_default()
            ));
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(dir.join(BUCKET_REGION_FILE), region))
        .map_err(|e| format!("cannot create the local bucket {}: {e}", dir.display()))
}

/// The region a local bucket belongs to, when it was claimed.
pub fn bucket_region(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(BUCKET_REGION_FILE))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The local regions' artifact stores: directories under the data directory (or a run's
/// `--artifact-root`).
pub struct LocalArtifactStores {
    pub data_dir: PathBuf,
}

impl ArtifactStores for LocalArtifactStores {
    fn open(&self, region: &str, store: &StoreLocation) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
        let base = store.root.as_deref().unwrap_or(&self.data_dir);
        let dir = store_root(base, &store.store_type, &store.location);
        if store.store_type == "S3" {
            claim_bucket(&dir, region).map_err(|message| ArtifactError::Store {
                region: region.to_string(),
                message,
            })?;
        }
        Ok(Arc::new(ObjectArtifactStore::local(region, &dir)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_name_never_leaves_the_buckets_directory() {
        let data = Path::new("/data");
        assert_eq!(store_root(data, "S3", "../../etc"), Path::new("/data/s3/..%2F..%2Fetc"));
        assert_eq!(
            store_root(data, "S3", "app-artifacts-eu-west-1"),
            Path::new("/data/s3/app-artifacts-eu-west-1")
        );
    }
}

/// The snippets `AWS::Include` reads: objects of the local buckets under `root`, whatever region
/// owns the bucket (an S3 URI names one object everywhere).
#[derive(Debug)]
pub struct LocalSnippets {
    pub root: PathBuf,
}

impl meridian_template::include::Snippets for LocalSnippets {
    fn get(&self, bucket: &str, key: &str) -> Result<String, String> {
        use meridian_pipeline::source::{read_text, MAX_INPUT_BYTES};
        let dir = store_root(&self.root, "S3", bucket);
        if bucket_region(&dir).is_none() {
            return Err(format!("S3 Error Code: NoSuchBucket. The specified bucket does not exist (s3://{bucket}, among the local buckets under {})", self.root.join("s3").display()));
        }
        let file = crate::endpoint::s3::local_object(&self.root, bucket, key)
            .ok_or_else(|| format!("`{key}` is not a key local regions can store"))?;
        if !file.is_file() {
            return Err(format!(
                "S3 Error Code: NoSuchKey. The specified key does not exist (s3://{bucket}/{key})"
            ));
        }
        read_text(&file, MAX_INPUT_BYTES).map_err(|e| format!("cannot read s3://{bucket}/{key}: {e}"))
    }
}
