//! Artifact stores: one per region, content-addressed by SHA-256 digest, through which a
//! release's artifacts reach every region that deploys it. The engine replicates and verifies
//! through [`ArtifactStore`]; a backend opens a region's store from the pipeline's declaration of
//! it ([`ArtifactStores`]).

use futures::future::BoxFuture;
use meridian_core::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact store error in {region}: {message}")]
    Store { region: String, message: String },
    #[error("{0}")]
    Io(String),
    #[error("artifact {digest} copied to {region} has digest {actual}: the copy is corrupt and was discarded")]
    DigestMismatch {
        region: String,
        digest: Digest,
        actual: Digest,
    },
    #[error("artifact {digest} is not in the {region} store")]
    Missing { region: String, digest: Digest },
}

pub type Result<T> = std::result::Result<T, ArtifactError>;

/// A region's artifact store.
pub trait ArtifactStore: Send + Sync {
    fn region(&self) -> &str;
    /// Where the store is, for messages.
    fn location(&self) -> String;
    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool>>;
    /// Stores a file, returning its digest and size.
    fn put_file<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<(Digest, u64)>>;
    /// Writes an artifact to a file, verifying its digest.
    fn get_to_file<'a>(&'a self, digest: &'a Digest, path: &'a Path) -> BoxFuture<'a, Result<()>>;
    /// Copies an artifact from another store if this one lacks it; returns the bytes copied.
    fn replicate_from<'a>(&'a self, source: &'a dyn ArtifactStore, digest: &'a Digest) -> BoxFuture<'a, Result<u64>>;
    /// The artifact's bytes as a stream of chunks.
    fn stream<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<futures::stream::BoxStream<'a, Result<bytes::Bytes>>>>;
    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<Digest>>>;
    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<()>>;
}

/// Where the pipeline keeps a region's artifacts: its `artifactStore` (`S3` and a bucket name, or
/// Meridian's `Local` and a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    pub store_type: String,
    pub location: String,
    /// Local regions only: where this run's buckets live (`meridian run --artifact-root`).
    pub root: Option<PathBuf>,
}

/// Opens the artifact store of a region from the pipeline's declaration of it: the local backend
/// maps a bucket to a directory, AWS to the bucket itself.
pub trait ArtifactStores: Send + Sync {
    fn open(&self, region: &str, store: &StoreLocation) -> Result<Arc<dyn ArtifactStore>>;
}
