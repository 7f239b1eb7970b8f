//! Artifacts and artifact stores.
//!
//! An artifact is a zip file with deterministic bytes (entries sorted, fixed timestamps, only the
//! executable bit kept), stored by its SHA-256 digest, one store per region. Stores go through the
//! `object_store` crate: the local filesystem now, S3 buckets behind the same trait later. Before an
//! action runs in another region its inputs are replicated to that region's store and verified by
//! digest; content already there is never copied again.

use futures::future::BoxFuture;
use futures::StreamExt;
use meridian_core::digest::DigestWriter;
use meridian_core::Digest;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use meridian_region::artifacts::{ArtifactError, ArtifactStore, Result};

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Io(format!("failed to {what} `{}`: {e}", path.display()))
}

/// An artifact store over any `object_store` backend.
pub struct ObjectArtifactStore {
    region: String,
    location: String,
    store: Arc<dyn ObjectStore>,
}

fn key(d: &Digest) -> ObjPath {
    ObjPath::from(object_key(d))
}

/// Where an artifact lies in its store's bucket (what services that read the bucket, such as
/// CodeBuild, are given).
pub fn object_key(d: &Digest) -> String {
    format!("sha256/{}.zip", d.hex())
}

fn tmp_key() -> ObjPath {
    let mut b = [0u8; 8];
    meridian_core::random::fill(&mut b);
    ObjPath::from(format!("tmp/{}-{}", std::process::id(), hex::encode(b)))
}

impl ObjectArtifactStore {
    /// A store in a local directory (created if missing).
    pub fn local(region: &str, root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| io("create the artifact store", root, e))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(root).map_err(|e| ArtifactError::Store {
            region: region.into(),
            message: e.to_string(),
        })?;
        Ok(ObjectArtifactStore {
            region: region.into(),
            location: root.display().to_string(),
            store: Arc::new(fs),
        })
    }

    pub fn new(region: &str, location: &str, store: Arc<dyn ObjectStore>) -> Self {
        ObjectArtifactStore {
            region: region.into(),
            location: location.into(),
            store,
        }
    }

    fn err(&self, source: object_store::Error) -> ArtifactError {
        ArtifactError::Store {
            region: self.region.clone(),
            message: source.to_string(),
        }
    }

    /// Writes a stream of chunks under a temporary key while hashing it, then moves it to its
    /// digest's key if the digest is the expected one.
    async fn put_stream<S>(&self, mut chunks: S, expect: Option<&Digest>) -> Result<(Digest, u64)>
    where
        S: futures::Stream<Item = Result<bytes::Bytes>> + Unpin,
    {
        let tmp = tmp_key();
        let upload = self.store.put_multipart(&tmp).await.map_err(|e| self.err(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut hash = DigestWriter::new();
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            hash.update(&chunk);
            size += chunk.len() as u64;
            writer.put(chunk);
        }
        writer.finish().await.map_err(|e| self.err(e))?;
        let digest = hash.finish();
        if let Some(expect) = expect {
            if &digest != expect {
                let _ = self.store.delete(&tmp).await;
                return Err(ArtifactError::DigestMismatch {
                    region: self.region.clone(),
                    digest: *expect,
                    actual: digest,
                });
            }
        }
        self.store.rename(&tmp, &key(&digest)).await.map_err(|e| self.err(e))?;
        Ok((digest, size))
    }
}

fn file_chunks(path: &Path) -> Result<impl futures::Stream<Item = Result<bytes::Bytes>> + Unpin> {
    let mut f = std::fs::File::open(path).map_err(|e| io("open", path, e))?;
    let path = path.to_path_buf();
    Ok(futures::stream::iter(std::iter::from_fn(move || {
        let mut buf = vec![0u8; 4 << 20];
        match f.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(bytes::Bytes::from(buf)))
            }
            Err(e) => Some(Err(io("read", &path, e))),
        }
    })))
}

impl ArtifactStore for ObjectArtifactStore {
    fn region(&self) -> &str {
        &self.region
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            match self.store.head(&key(digest)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.err(e)),
            }
        })
    }

    fn put_file<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<(Digest, u64)>> {
        Box::pin(async move { self.put_stream(file_chunks(path)?, None).await })
    }

    fn get_to_file<'a>(&'a self, digest: &'a Digest, path: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut chunks = self.stream(digest).await?;
            let mut f = std::fs::File::create(path).map_err(|e| io("create", path, e))?;
            let mut hash = DigestWriter::new();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                hash.update(&chunk);
                f.write_all(&chunk).map_err(|e| io("write", path, e))?;
            }
            let actual = hash.finish();
            if &actual != digest {
                return Err(ArtifactError::DigestMismatch {
                    region: self.region.clone(),
                    digest: *digest,
                    actual,
                });
            }
            Ok(())
        })
    }

    fn replicate_from<'a>(&'a self, source: &'a dyn ArtifactStore, digest: &'a Digest) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            if self.contains(digest).await? {
                return Ok(0);
            }
            let chunks = source.stream(digest).await?;
            let (_, size) = self.put_stream(chunks, Some(digest)).await?;
            Ok(size)
        })
    }

    fn stream<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<futures::stream::BoxStream<'a, Result<bytes::Bytes>>>> {
        Box::pin(async move {
            let got = match self.store.get(&key(digest)).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(ArtifactError::Missing {
                        region: self.region.clone(),
                        digest: *digest,
                    })
                }
                Err(e) => return Err(self.err(e)),
            };
            let region = self.region.clone();
            Ok(got
                .into_stream()
                .map(move |c| {
                    c.map_err(|e| ArtifactError::Store {
                        region: region.clone(),
                        message: e.to_string(),
                    })
                })
                .boxed())
        })
    }

    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<Digest>>> {
        Box::pin(async move {
            let prefix = ObjPath::from("sha256");
            let mut out = Vec::new();
            let mut items = self.store.list(Some(&prefix));
            while let Some(item) = items.next().await {
                let meta = item.map_err(|e| self.err(e))?;
                if let Some(hexname) = meta.location.filename().and_then(|f| f.strip_suffix(".zip")) {
                    if let Ok(d) = hexname.parse() {
                        out.push(d);
                    }
                }
            }
            Ok(out)
        })
    }

    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.store.delete(&key(digest)).await.map_err(|e| self.err(e)) })
    }
}

/// Zips a directory into `out` with deterministic bytes: the same files give the same digest.
pub fn pack_dir(dir: &Path, out: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let f = std::fs::File::create(out).map_err(|e| io("create", out, e))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(f));
    let when = zip::DateTime::default();
    for rel in files {
        let full = dir.join(&rel);
        let name = rel.to_string_lossy().replace('\\', "/");
        let meta = std::fs::symlink_metadata(&full).map_err(|e| io("read", &full, e))?;
        let base = zip::write::SimpleFileOptions::default().last_modified_time(when);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full).map_err(|e| io("read the link", &full, e))?;
            zip.add_symlink(name, target.to_string_lossy(), base.unix_permissions(0o777))
                .map_err(|e| io("zip", &full, e))?;
        } else if meta.is_dir() {
            zip.add_directory(format!("{name}/"), base.unix_permissions(0o755))
                .map_err(|e| io("zip", &full, e))?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            let opts = base
                .unix_permissions(mode)
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(name, opts).map_err(|e| io("zip", &full, e))?;
            let mut src = std::fs::File::open(&full).map_err(|e| io("open", &full, e))?;
            std::io::copy(&mut src, &mut zip).map_err(|e| io("zip", &full, e))?;
        }
    }
    zip.finish()
        .map_err(|e| io("finish", out, e))?
        .flush()
        .map_err(|e| io("write", out, e))?;
    Ok(())
}

/// Relative paths of every file, link and empty directory under `dir`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io("list", dir, e))?;
    let mut empty = true;
    for e in entries {
        let e = e.map_err(|e| io("list", dir, e))?;
        empty = false;
        let path = e.path();
        let ft = e.file_type().map_err(|e| io("read", &path, e))?;
        if ft.is_dir() {
            collect(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    if empty && dir != root {
        out.push(dir.strip_prefix(root).unwrap_or(dir).to_path_buf());
    }
    Ok(())
}

/// Unzips an artifact into `dir`, refusing entries that would land outside it.
pub fn unpack(zip_path: &Path, dir: &Path) -> Result<()> {
    let f = std::fs::File::open(zip_path).map_err(|e| io("open", zip_path, e))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(|e| io("read the zip", zip_path, e))?;
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    archive.extract(dir).map_err(|e| io("unzip", zip_path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("b/c")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        std::fs::write(dir.join("a.txt"), "alpha").unwrap();
        std::fs::write(dir.join("b/c/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("b/c/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    }

    #[test]
    fn zips_are_deterministic_and_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let (one, two) = (t.path().join("one"), t.path().join("two"));
        tree(&one);
        std::thread::sleep(std::time::Duration::from_millis(20));
        tree(&two);
        pack_dir(&one, &t.path().join("1.zip")).unwrap();
        pack_dir(&two, &t.path().join("2.zip")).unwrap();
        let (b1, b2) = (
            std::fs::read(t.path().join("1.zip")).unwrap(),
            std::fs::read(t.path().join("2.zip")).unwrap(),
        );
        assert_eq!(
            Digest::of(&b1),
            Digest::of(&b2),
            "same files, same bytes, whatever the times"
        );
        let out = t.path().join("out");
        unpack(&t.path().join("1.zip"), &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("b/c/run.sh")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(out.join("b/c/run.sh")).unwrap().permissions().mode() & 0o111,
            0o111
        );
        assert_eq!(std::fs::read_link(out.join("link")).unwrap(), Path::new("a.txt"));
        assert!(out.join("empty").is_dir());
    }

    #[tokio::test]
    async fn replication_copies_once_and_verifies() {
        let t = tempfile::tempdir().unwrap();
        let home = ObjectArtifactStore::local("us-east-1", &t.path().join("use1")).unwrap();
        let eu = ObjectArtifactStore::local("eu-west-1", &t.path().join("euw1")).unwrap();
        let file = t.path().join("blob");
        std::fs::write(&file, vec![7u8; 3 << 20]).unwrap();
        let (d, size) = home.put_file(&file).await.unwrap();
        assert_eq!(d, Digest::of(&std::fs::read(&file).unwrap()));
        assert_eq!(eu.replicate_from(&home, &d).await.unwrap(), size);
        assert_eq!(
            eu.replicate_from(&home, &d).await.unwrap(),
            0,
            "content already there is not copied again"
        );
        assert_eq!(eu.list().await.unwrap(), vec![d]);
        let back = t.path().join("back");
        eu.get_to_file(&d, &back).await.unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&file).unwrap());
        // A corrupted object is caught by its digest.
        let obj = t.path().join("use1/sha256").join(format!("{}.zip", d.hex()));
        std::fs::write(&obj, b"corrupt").unwrap();
        let ap = ObjectArtifactStore::local("ap-southeast-2", &t.path().join("apse2")).unwrap();
        let err = ap.replicate_from(&home, &d).await.unwrap_err();
        assert!(matches!(err, ArtifactError::DigestMismatch { .. }), "{err}");
        assert!(!ap.contains(&d).await.unwrap(), "a corrupt copy is discarded");
    }
}
