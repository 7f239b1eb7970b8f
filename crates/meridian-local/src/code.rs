//! Code packages: zip bytes are stored content-addressed by SHA-256 and unpacked once, under
//! `<data-dir>/regions/<region>/lambda/code/<sha256>/`, where every version with that code runs.

use crate::error::{LambdaError, Result};
use crate::model::CodeSource;
use meridian_core::{Digest, RegionId};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A package ready to run.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub sha256: Digest,
    pub size: u64,
}

pub fn code_dir(data_dir: &Path, region: &RegionId, sha: &Digest) -> PathBuf {
    data_dir
        .join("regions")
        .join(region.as_str())
        .join("lambda")
        .join("code")
        .join(sha.hex())
}

/// Stores and unpacks a package; storing the same bytes twice is a no-op.
pub fn store(data_dir: &Path, region: &RegionId, source: &CodeSource) -> Result<StoredCode> {
    let bytes = match source {
        CodeSource::ZipBytes(b) => b.clone(),
        CodeSource::ZipFile(p) => std::fs::read(p).map_err(|e| LambdaError::io("read the code package", p, e))?,
        CodeSource::Directory(d) => zip_directory(d)?,
    };
    let sha = Digest::of(&bytes);
    let dir = code_dir(data_dir, region, &sha);
    if !dir.is_dir() {
        unpack(&bytes, &dir)?;
    }
    Ok(StoredCode {
        sha256: sha,
        size: bytes.len() as u64,
    })
}

fn unpack(bytes: &[u8], dir: &Path) -> Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| LambdaError::InvalidZipFile(format!("not a zip archive: {e}")))?;
    let parent = dir.parent().expect("code dir has a parent");
    std::fs::create_dir_all(parent).map_err(|e| LambdaError::io("create", parent, e))?;
    // Unpack beside the final place and rename, so that a reader never sees half a package.
    let tmp = parent.join(format!(
        ".unpack-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&tmp).map_err(|e| LambdaError::io("create", &tmp, e))?;
    let result = (|| {
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| LambdaError::InvalidZipFile(format!("entry {i}: {e}")))?;
            let Some(rel) = entry.enclosed_name() else {
                return Err(LambdaError::InvalidZipFile(format!(
                    "entry `{}` points outside the package",
                    entry.name()
                )));
            };
            let out = tmp.join(rel);
            if entry.is_dir() {
                std::fs::create_dir_all(&out).map_err(|e| LambdaError::io("create", &out, e))?;
                continue;
            }
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).map_err(|e| LambdaError::io("create", p, e))?;
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut data)
                .map_err(|e| LambdaError::InvalidZipFile(format!("entry `{}`: {e}", entry.name())))?;
            std::fs::write(&out, &data).map_err(|e| LambdaError::io("write", &out, e))?;
            #[cfg(unix)]
            if let Some(mode) = entry.unix_mode() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o777))
                    .map_err(|e| LambdaError::io("set permissions of", &out, e))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        // Another process unpacked the same digest first: same content, keep theirs.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(LambdaError::io("move the unpacked package to", dir, e)),
    }
}

/// Zips a directory deterministically (sorted entries, fixed timestamps, modes kept), so that the
/// same tree always has the same digest.
pub fn zip_directory(dir: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for rel in files {
        let path = dir.join(&rel);
        let data = std::fs::read(&path).map_err(|e| LambdaError::io("read", &path, e))?;
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&path)
                .map_err(|e| LambdaError::io("read metadata of", &path, e))?
                .permissions()
                .mode()
                & 0o777
        };
        #[cfg(not(unix))]
        let mode = 0o644;
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode);
        let name = rel.to_string_lossy().replace('\\', "/");
        let zerr = |e: zip::result::ZipError| LambdaError::Service(format!("failed to zip {}: {e}", path.display()));
        w.start_file(name, opts).map_err(zerr)?;
        w.write_all(&data).map_err(|e| LambdaError::io("zip", &path, e))?;
    }
    let cursor = w
        .finish()
        .map_err(|e| LambdaError::Service(format!("failed to zip {}: {e}", dir.display())))?;
    Ok(cursor.into_inner())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| LambdaError::io("read directory", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| LambdaError::io("read directory", dir, e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| LambdaError::io("read", &path, e))?;
        if ft.is_dir() {
            if entry.file_name() == "__pycache__" {
                continue;
            }
            collect(root, &path, out)?;
        } else if ft.is_file() || ft.is_symlink() {
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_zip_deterministically_and_unpack_with_modes() {
        let base = std::env::temp_dir().join(format!("meridian-code-test-{}", std::process::id()));
        let src = base.join("src");
        std::fs::create_dir_all(src.join("lib")).unwrap();
        std::fs::write(src.join("lib/a.txt"), "hello").unwrap();
        std::fs::write(src.join("bootstrap"), "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(src.join("bootstrap"), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let a = zip_directory(&src).unwrap();
        let b = zip_directory(&src).unwrap();
        assert_eq!(Digest::of(&a), Digest::of(&b));
        let region = RegionId::new("us-east-1").unwrap();
        let stored = store(&base, &region, &CodeSource::Directory(src.clone())).unwrap();
        let dir = code_dir(&base, &region, &stored.sha256);
        assert_eq!(std::fs::read_to_string(dir.join("lib/a.txt")).unwrap(), "hello");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("bootstrap")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        let err = store(&base, &region, &CodeSource::ZipBytes(b"not a zip".to_vec())).unwrap_err();
        assert_eq!(err.error_type(), "InvalidZipFileException");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
