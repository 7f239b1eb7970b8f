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

/// Reads a package file with a bound: a package is never larger than what it may unpack to, so
/// `/dev/zero` or a huge file ends at once instead of filling memory.
fn read_package(p: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(p).map_err(|e| LambdaError::io("read the code package", p, e))?;
    let mut bytes = Vec::new();
    f.take(MAX_UNZIPPED_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LambdaError::io("read the code package", p, e))?;
    if bytes.len() as u64 > MAX_UNZIPPED_BYTES {
        return Err(LambdaError::InvalidParameterValue(format!(
            "the code package {} is larger than {MAX_UNZIPPED_BYTES} bytes: Lambda takes packages that unpack to less than that",
            p.display()
        )));
    }
    Ok(bytes)
}

/// Stores and unpacks a package; storing the same bytes twice is a no-op.
pub fn store(data_dir: &Path, region: &RegionId, source: &CodeSource) -> Result<StoredCode> {
    let bytes = match source {
        CodeSource::ZipBytes(b) => b.clone(),
        CodeSource::ZipFile(p) => read_package(p)?,
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

/// Lambda's quota on a function's unzipped code (and layers): 250 MB.
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;

/// The most entries (files and directories) Meridian unpacks from one package. Lambda sets no
/// number; this one bounds the files and inodes a package can make (a 50 MB zip of empty files
/// holds more than a million).
pub const MAX_ENTRIES: usize = 50_000;

/// How much a package may unpack to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    bytes: u64,
    entries: usize,
}

const LIMITS: Limits = Limits {
    bytes: MAX_UNZIPPED_BYTES,
    entries: MAX_ENTRIES,
};

fn unpack(bytes: &[u8], dir: &Path) -> Result<()> {
    unpack_within(bytes, dir, LIMITS)
}

/// Unpacks a package, counting the bytes actually written (never the sizes its headers claim):
/// past `limits.bytes` it is refused with Lambda's answer, and nothing of it is kept.
fn unpack_within(bytes: &[u8], dir: &Path, limits: Limits) -> Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| LambdaError::InvalidZipFile(format!("not a zip archive: {e}")))?;
    if archive.len() > limits.entries {
        return Err(LambdaError::InvalidParameterValue(format!(
            "The package has {} entries, more than the {} Meridian unpacks",
            archive.len(),
            limits.entries
        )));
    }
    let too_large =
        || LambdaError::InvalidParameterValue(format!("Unzipped size must be smaller than {} bytes", limits.bytes));
    let mut written: u64 = 0;
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
            let outside =
                || LambdaError::InvalidZipFile(format!("entry `{}` points outside the package", entry.name()));
            let rel = match (meridian_core::path::check_relative(entry.name()), entry.enclosed_name()) {
                (Ok(rel), Some(_)) if !rel.as_os_str().is_empty() => rel,
                _ => return Err(outside()),
            };
            let out = tmp.join(rel);
            if entry.is_dir() {
                std::fs::create_dir_all(&out).map_err(|e| LambdaError::io("create", &out, e))?;
                continue;
            }
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).map_err(|e| LambdaError::io("create", p, e))?;
            }
            // Streamed with a bound: the header's size may lie, and is not what is counted.
            let name = entry.name().to_string();
            let room = limits.bytes - written;
            let mut file = std::fs::File::create(&out).map_err(|e| LambdaError::io("create", &out, e))?;
            let mut limited = (&mut entry).take(room + 1);
            let mut buf = vec![0u8; 64 * 1024];
            let mut n: u64 = 0;
            loop {
                let got = match limited.read(&mut buf) {
                    Ok(0) => break,
                    Ok(got) => got,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(LambdaError::InvalidZipFile(format!("entry `{name}`: {e}"))),
                };
                n += got as u64;
                if n > room {
                    return Err(too_large());
                }
                file.write_all(&buf[..got])
                    .map_err(|e| LambdaError::io("write", &out, e))?;
            }
            written += n;
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

    fn zip_of(entries: &[(&str, u64)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let zeros = vec![0u8; 1 << 20];
        for (name, size) in entries {
            w.start_file(*name, opts).unwrap();
            let mut left = *size;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                w.write_all(&zeros[..n]).unwrap();
                left -= n as u64;
            }
        }
        w.finish().unwrap().into_inner()
    }

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("meridian-code-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn a_zip_bomb_is_refused_with_lambdas_answer_and_nothing_is_kept() {
        let base = tmp("bomb");
        // under 1 MB of zip, over 250 MB unpacked
        let bomb = zip_of(&[("a.bin", 200 << 20), ("b.bin", 62 << 20)]);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let region = RegionId::new("us-east-1").unwrap();
        let err = store(&base, &region, &CodeSource::ZipBytes(bomb.clone())).unwrap_err();
        assert_eq!(err.error_type(), "InvalidParameterValueException");
        assert_eq!(err.to_string(), "Unzipped size must be smaller than 262144000 bytes");
        assert!(!code_dir(&base, &region, &Digest::of(&bomb)).exists());
        let parent = base.join("regions/us-east-1/lambda/code");
        assert_eq!(
            std::fs::read_dir(&parent).unwrap().count(),
            0,
            "the partial unpack is removed"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn entries_are_bounded_in_number_and_confined() {
        let base = tmp("entries");
        let limits = Limits {
            bytes: 1000,
            entries: 3,
        };
        let zip = zip_of(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
        let err = unpack_within(&zip, &base.join("x/one"), limits).unwrap_err();
        assert_eq!(err.error_type(), "InvalidParameterValueException");
        assert_eq!(
            err.to_string(),
            "The package has 4 entries, more than the 3 Meridian unpacks"
        );
        // bytes written are counted across entries
        let zip = zip_of(&[("a", 600), ("b", 600)]);
        let err = unpack_within(&zip, &base.join("x/two"), limits).unwrap_err();
        assert_eq!(err.to_string(), "Unzipped size must be smaller than 1000 bytes");
        for name in ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt"] {
            let zip = zip_of(&[(name, 1)]);
            let err = unpack_within(&zip, &base.join("x/three"), limits).unwrap_err();
            assert_eq!(err.error_type(), "InvalidZipFileException", "{name}");
            assert_eq!(
                err.to_string(),
                format!("failed to read the code package: entry `{name}` points outside the package")
            );
        }
        assert!(!base.join("escape.txt").exists() && !base.join("x/escape.txt").exists());
        let _ = std::fs::remove_dir_all(&base);
    }
}
