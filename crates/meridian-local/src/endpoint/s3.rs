//! S3 over the local buckets, through `s3s` (which speaks the protocol: routing, XML, SigV4,
//! chunked uploads). A bucket is the directory `<data>/s3/<bucket>` that the artifact stores use,
//! and an object is the file object_store's local file system maps its key to, so that `aws s3 ls`
//! sees what a pipeline stored and a pipeline reads what `aws s3 cp` wrote.
//!
//! A bucket belongs to the region that created it; a request signed for another region gets S3's
//! `PermanentRedirect` with `x-amz-bucket-region`, which SDKs follow. Writes go to a temporary file
//! in the bucket and are renamed into place whole: a killed upload leaves no half object.

use crate::buckets::{bucket_region, claim_bucket, store_root};
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Files and directories of a bucket's directory that are Meridian's, not objects.
const RESERVED_PREFIX: &str = ".meridian-";
const TMP_DIR: &str = ".meridian-tmp";
const UPLOADS_DIR: &str = ".meridian-uploads";

/// S3's limits: one PUT, one part, and the number of parts.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
const MAX_PARTS: i32 = 10_000;

/// The region a request was made to (from its credential scope, else the endpoint's default),
/// put in the request's extensions by the router.
#[derive(Clone, Debug)]
pub struct RequestRegion(pub String);

pub struct LocalS3 {
    pub data_dir: PathBuf,
    pub default_region: String,
}

fn region_of<T>(req: &S3Request<T>, default: &str) -> String {
    if let Some(r) = req.extensions.get::<RequestRegion>() {
        return r.0.clone();
    }
    req.region
        .as_ref()
        .map(|r| r.as_str().to_string())
        .unwrap_or_else(|| default.to_string())
}

fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(S3ErrorCode::InternalError, format!("{what}: {e}"))
}

fn no_such_bucket(bucket: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchBucket,
        format!("The specified bucket does not exist: `{bucket}` (create it with `aws s3 mb s3://{bucket}`)"),
    )
}

fn no_such_key(key: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchKey,
        format!("The specified key does not exist: `{key}`"),
    )
}

/// S3's answer to a request for a bucket of another region.
fn redirect(bucket: &str, owner: &str, asked: &str) -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::PermanentRedirect,
        format!("The bucket `{bucket}` is in region {owner}, not {asked}: send the request to {owner}."),
    );
    e.set_status_code(hyper::StatusCode::MOVED_PERMANENTLY);
    let mut h = hyper::HeaderMap::new();
    if let Ok(v) = owner.parse() {
        h.insert("x-amz-bucket-region", v);
    }
    e.set_headers(h);
    e
}

fn etag_of(meta: &std::fs::Metadata) -> String {
    // Not the MD5 of the bytes (that would mean reading every object): size and modification time,
    // which change whenever the object does. docs/local-regions.md says so.
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{:x}", meta.len(), mtime)
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// The key an object file stands for: object_store's path, percent-decoded part by part.
fn key_of(p: &ObjectPath) -> String {
    p.parts()
        .map(|part| {
            percent_encoding::percent_decode_str(part.as_ref())
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl LocalS3 {
    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        store_root(&self.data_dir, "S3", bucket)
    }

    /// The bucket's directory, when the bucket exists in the region asked.
    fn bucket_in(&self, bucket: &str, region: &str) -> S3Result<PathBuf> {
        let dir = self.bucket_dir(bucket);
        match bucket_region(&dir) {
            None => Err(no_such_bucket(bucket)),
            Some(owner) if owner != region => Err(redirect(bucket, &owner, region)),
            Some(_) => Ok(dir),
        }
    }

    fn object_file(dir: &Path, key: &str) -> S3Result<PathBuf> {
        if key.is_empty() || key.starts_with(RESERVED_PREFIX) || key.ends_with('/') || key.contains("//") {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("local regions cannot store the key `{key}`: keys must not be empty, end with `/`, hold `//` or start with `{RESERVED_PREFIX}`"),
            ));
        }
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| internal("bucket directory", e))?;
        fs.path_to_filesystem(&ObjectPath::from(key)).map_err(|e| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("`{key}` is not a key local regions can store: {e}"),
            )
        })
    }

    /// Streams `body` into a fresh temporary file of the bucket; returns it with its length, MD5 and
    /// the checksums asked for.
    async fn receive(
        dir: &Path,
        body: Option<StreamingBlob>,
        want: &Checksum,
        algorithm: Option<&ChecksumAlgorithm>,
        limit: u64,
    ) -> S3Result<Received> {
        let tmp_dir = dir.join(TMP_DIR);
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| internal("temporary directory", e))?;
        remove_stale(&tmp_dir);
        let tmp = tmp_dir.join(new_id());
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| internal("temporary file", e))?;
        let mut hasher = checksum_hasher(want, algorithm);
        let mut md5 = <md5::Md5 as md5::Digest>::new();
        let mut len = 0u64;
        let result: S3Result<()> = async {
            if let Some(mut body) = body {
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| {
                        S3Error::with_message(
                            S3ErrorCode::IncompleteBody,
                            format!("the request body could not be read: {e}"),
                        )
                    })?;
                    len += chunk.len() as u64;
                    if len > limit {
                        return Err(S3Error::with_message(
                            S3ErrorCode::EntityTooLarge,
                            format!("Your proposed upload exceeds the maximum allowed size ({limit} bytes)"),
                        ));
                    }
                    md5::Digest::update(&mut md5, &chunk);
                    hasher.update(&chunk);
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| internal("writing the object", e))?;
                }
            }
            file.flush().await.map_err(|e| internal("writing the object", e))?;
            file.sync_all().await.map_err(|e| internal("writing the object", e))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(Received {
            tmp,
            md5: md5::Digest::finalize(md5).to_vec(),
            checksum: hasher.finalize(),
        })
    }

    /// Receives an upload's body and checks it against every checksum the request states (in
    /// headers, or in the trailer of an aws-chunked body): BadDigest, and nothing kept, when one
    /// differs.
    async fn receive_verified<T>(dir: &Path, req: &S3Request<T>, up: Upload) -> S3Result<Received> {
        let got = Self::receive(dir, up.body, &up.headers, up.algorithm.as_ref(), MAX_PUT_BYTES).await?;
        let stated = stated_checksums(req, up.headers);
        if let Err(e) = verify(&stated, &got.checksum, &got.md5, up.content_md5.as_deref()) {
            let _ = tokio::fs::remove_file(&got.tmp).await;
            return Err(e);
        }
        Ok(got)
    }

    /// Puts a received file in place of `key`'s object, atomically.
    async fn commit(tmp: &Path, target: &Path) -> S3Result<std::fs::Metadata> {
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| internal("object directory", e))?;
        }
        if let Err(e) = tokio::fs::rename(tmp, target).await {
            let _ = tokio::fs::remove_file(tmp).await;
            return Err(internal("placing the object", e));
        }
        tokio::fs::metadata(target)
            .await
            .map_err(|e| internal("reading the object", e))
    }

    /// The file of a copy's source object (in any region, as with S3), with its key.
    fn copy_source<'a>(&self, source: &'a CopySource) -> S3Result<(PathBuf, &'a str)> {
        let CopySource::Bucket { bucket, key, .. } = source else {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "local regions copy from buckets, not access points",
            ));
        };
        let src_dir = self.bucket_dir(bucket);
        if bucket_region(&src_dir).is_none() {
            return Err(no_such_bucket(bucket));
        }
        Ok((Self::object_file(&src_dir, key)?, key))
    }

    /// Every object of a bucket, as (key, file), sorted by key.
    fn walk(dir: &Path) -> S3Result<Vec<(String, PathBuf)>> {
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| internal("bucket directory", e))?;
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(internal("listing the bucket", e)),
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if d == dir && name.starts_with(RESERVED_PREFIX) {
                    continue;
                }
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() {
                    // object_store's own temporary files (`name#N`) are not objects.
                    if name
                        .rsplit_once('#')
                        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    {
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(dir) else { continue };
                    let rel = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
                    let Ok(p) = ObjectPath::parse(&rel) else { continue };
                    let key = key_of(&p);
                    if fs.path_to_filesystem(&ObjectPath::from(key.as_str())).ok().as_deref() == Some(path.as_path()) {
                        out.push((key, path));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes the directories an object's deletion emptied, up to the bucket's.
    fn prune(dir: &Path, file: &Path) {
        let mut at = file.parent();
        while let Some(d) = at {
            if d == dir || !d.starts_with(dir) || std::fs::remove_dir(d).is_err() {
                break;
            }
            at = d.parent();
        }
    }
}

/// The file of `bucket`'s object `key` under `data_dir` (whether or not it exists), or `None` when
/// the key cannot name a local object.
pub fn local_object(data_dir: &Path, bucket: &str, key: &str) -> Option<PathBuf> {
    LocalS3::object_file(&store_root(data_dir, "S3", bucket), key).ok()
}

/// What a PutObject or UploadPart sends: its body, and the checksums it states in headers.
struct Upload {
    body: Option<StreamingBlob>,
    headers: Checksum,
    algorithm: Option<ChecksumAlgorithm>,
    content_md5: Option<String>,
}

/// Takes the body and stated checksums out of a PutObject or UploadPart request (their fields
/// have the same names).
macro_rules! take_upload {
    ($req:ident) => {
        Upload {
            body: $req.input.body.take(),
            headers: Checksum {
                checksum_crc32: $req.input.checksum_crc32.clone(),
                checksum_crc32c: $req.input.checksum_crc32c.clone(),
                checksum_sha1: $req.input.checksum_sha1.clone(),
                checksum_sha256: $req.input.checksum_sha256.clone(),
                checksum_crc64nvme: $req.input.checksum_crc64nvme.clone(),
                ..Default::default()
            },
            algorithm: $req.input.checksum_algorithm.clone(),
            content_md5: $req.input.content_md5.clone(),
        }
    };
}

struct Received {
    tmp: PathBuf,
    md5: Vec<u8>,
    checksum: Checksum,
}

fn checksum_hasher(want: &Checksum, algorithm: Option<&ChecksumAlgorithm>) -> s3s::checksum::ChecksumHasher {
    let mut h = s3s::checksum::ChecksumHasher::default();
    let alg = algorithm.map(|a| a.as_str().to_ascii_uppercase());
    let asked = |name: &str, given: bool| given || alg.as_deref() == Some(name);
    if asked("CRC32", want.checksum_crc32.is_some()) {
        h.crc32 = Some(Default::default());
    }
    if asked("CRC32C", want.checksum_crc32c.is_some()) {
        h.crc32c = Some(Default::default());
    }
    if asked("SHA1", want.checksum_sha1.is_some()) {
        h.sha1 = Some(Default::default());
    }
    if asked("SHA256", want.checksum_sha256.is_some()) {
        h.sha256 = Some(Default::default());
    }
    if asked("CRC64NVME", want.checksum_crc64nvme.is_some()) {
        h.crc64nvme = Some(Default::default());
    }
    h
}

/// The checksums a request states: its headers, else its trailer (aws-chunked uploads send them
/// after the body).
fn stated_checksums<T>(req: &S3Request<T>, headers_given: Checksum) -> Checksum {
    let mut c = headers_given;
    if let Some(t) = &req.trailing_headers {
        t.read(|h| {
            let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
            c.checksum_crc32 = c.checksum_crc32.take().or_else(|| get("x-amz-checksum-crc32"));
            c.checksum_crc32c = c.checksum_crc32c.take().or_else(|| get("x-amz-checksum-crc32c"));
            c.checksum_sha1 = c.checksum_sha1.take().or_else(|| get("x-amz-checksum-sha1"));
            c.checksum_sha256 = c.checksum_sha256.take().or_else(|| get("x-amz-checksum-sha256"));
            c.checksum_crc64nvme = c.checksum_crc64nvme.take().or_else(|| get("x-amz-checksum-crc64nvme"));
        });
    }
    c
}

/// BadDigest when a stated checksum differs from the bytes received.
fn verify(stated: &Checksum, got: &Checksum, md5: &[u8], content_md5: Option<&str>) -> S3Result<()> {
    let pairs = [
        ("CRC32", &stated.checksum_crc32, &got.checksum_crc32),
        ("CRC32C", &stated.checksum_crc32c, &got.checksum_crc32c),
        ("SHA1", &stated.checksum_sha1, &got.checksum_sha1),
        ("SHA256", &stated.checksum_sha256, &got.checksum_sha256),
        ("CRC64NVME", &stated.checksum_crc64nvme, &got.checksum_crc64nvme),
    ];
    for (name, s, g) in pairs {
        if let (Some(s), Some(g)) = (s, g) {
            if s != g {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!(
                        "The {name} you specified did not match the calculated checksum ({s} stated, {g} received)."
                    ),
                ));
            }
        }
    }
    if let Some(given) = content_md5 {
        use base64::Engine as _;
        if given != base64::engine::general_purpose::STANDARD.encode(md5) {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    Ok(())
}

fn timestamp(meta: &std::fs::Metadata) -> Option<Timestamp> {
    meta.modified().ok().map(Timestamp::from)
}

#[async_trait::async_trait]
impl S3 for LocalS3 {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let region = region_of(&req, &self.default_region);
        let bucket = req.input.bucket.clone();
        let constraint = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_string());
        match constraint.as_deref().filter(|c| !c.is_empty()) {
            None if region == "us-east-1" => {}
            Some(c) if c == region => {}
            Some(c) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::IllegalLocationConstraintException,
                    format!("The {c} location constraint is incompatible for the region specific endpoint this request was sent to ({region})."),
                ))
            }
            None => {
                return Err(S3Error::with_message(
                    S3ErrorCode::IllegalLocationConstraintException,
                    format!("The unspecified location constraint is incompatible for the region specific endpoint this request was sent to ({region}): add --create-bucket-configuration LocationConstraint={region}."),
                ))
            }
        }
        let dir = self.bucket_dir(&bucket);
        if let Some(owner) = bucket_region(&dir) {
            if owner == region && region == "us-east-1" {
                return Ok(S3Response::new(CreateBucketOutput {
                    location: Some(format!("/{bucket}")),
                }));
            }
            return Err(S3Error::with_message(
                S3ErrorCode::BucketAlreadyOwnedByYou,
                format!("Your previous request to create the named bucket succeeded and you already own it (`{bucket}`, in {owner})."),
            ));
        }
        claim_bucket(&dir, &region).map_err(|e| internal("creating the bucket", e))?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        let region = region_of(&req, &self.default_region);
        self.bucket_in(&req.input.bucket, &region)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(region),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let dir = self.bucket_dir(&req.input.bucket);
        let owner = bucket_region(&dir).ok_or_else(|| no_such_bucket(&req.input.bucket))?;
        Ok(S3Response::new(GetBucketLocationOutput {
            // S3 answers an empty constraint for us-east-1.
            location_constraint: (owner != "us-east-1").then(|| BucketLocationConstraint::from(owner)),
        }))
    }

    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let root = self.data_dir.join("s3");
        let mut buckets = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let dir = e.path();
                if bucket_region(&dir).is_none() {
                    continue;
                }
                let name = percent_encoding::percent_decode_str(&e.file_name().to_string_lossy())
                    .decode_utf8_lossy()
                    .into_owned();
                let created = std::fs::metadata(&dir)
                    .ok()
                    .and_then(|m| m.created().or_else(|_| m.modified()).ok());
                buckets.push(Bucket {
                    name: Some(name),
                    creation_date: created.map(Timestamp::from),
                    ..Default::default()
                });
            }
        }
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some("meridian-local".into()),
                id: Some(crate::credentials::ACCOUNT_ID.into()),
            }),
            ..Default::default()
        }))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        if !Self::walk(&dir)?.is_empty() {
            return Err(S3Error::with_message(
                S3ErrorCode::BucketNotEmpty,
                format!(
                    "The bucket you tried to delete is not empty (`{}`): empty it first (`aws s3 rm --recursive`)",
                    req.input.bucket
                ),
            ));
        }
        std::fs::remove_dir_all(&dir).map_err(|e| internal("deleting the bucket", e))?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let target = Self::object_file(&dir, &req.input.key)?;
        if req.input.content_length.is_some_and(|l| l as u64 > MAX_PUT_BYTES) {
            return Err(S3Error::with_message(
                S3ErrorCode::EntityTooLarge,
                format!("Your proposed upload exceeds the maximum allowed size ({MAX_PUT_BYTES} bytes): use a multipart upload"),
            ));
        }
        let mut req = req;
        let upload = take_upload!(req);
        let got = Self::receive_verified(&dir, &req, upload).await?;
        let meta = Self::commit(&got.tmp, &target).await?;
        let c = got.checksum;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(etag_of(&meta))),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let path = Self::object_file(&dir, &req.input.key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such_key(&req.input.key)),
            Err(e) => return Err(internal("opening the object", e)),
        };
        let meta = file.metadata().await.map_err(|e| internal("reading the object", e))?;
        if !meta.is_file() {
            return Err(no_such_key(&req.input.key));
        }
        let full = meta.len();
        let (start, end, content_range) = match &req.input.range {
            None => (0, full, None),
            Some(r) => {
                let span = r.check(full).map_err(|_| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidRange,
                        format!("The requested range is not satisfiable (the object has {full} bytes)"),
                    )
                })?;
                let cr = format!("bytes {}-{}/{}", span.start, span.end.saturating_sub(1), full);
                (span.start, span.end, Some(cr))
            }
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| internal("reading the object", e))?;
        let len = end - start;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(stream_of(file, len)),
            content_length: Some(len as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(etag_of(&meta))),
            last_modified: timestamp(&meta),
            ..Default::default()
        }))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let path = Self::object_file(&dir, &req.input.key)?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(no_such_key(&req.input.key)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such_key(&req.input.key)),
            Err(e) => return Err(internal("reading the object", e)),
        };
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(meta.len() as i64),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(etag_of(&meta))),
            last_modified: timestamp(&meta),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let i = &req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let after = i
            .continuation_token
            .clone()
            .map(|t| {
                hex::decode(&t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        S3Error::with_message(
                            S3ErrorCode::InvalidArgument,
                            "The continuation token provided is incorrect",
                        )
                    })
            })
            .transpose()?
            .or_else(|| i.start_after.clone());
        let mut contents = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut truncated = false;
        let mut last = None;
        for (key, path) in Self::walk(&dir)? {
            if !key.starts_with(&prefix) || after.as_deref().is_some_and(|a| key.as_str() <= a) {
                continue;
            }
            if let Some(d) = i.delimiter.as_deref().filter(|d| !d.is_empty()) {
                if let Some(pos) = key[prefix.len()..].find(d) {
                    let cp = key[..prefix.len() + pos + d.len()].to_string();
                    if prefixes.last() == Some(&cp) {
                        continue;
                    }
                    if contents.len() + prefixes.len() >= max {
                        truncated = true;
                        break;
                    }
                    // Skip the rest of this prefix on the next page too.
                    last = Some(format!("{cp}\u{10FFFF}"));
                    prefixes.push(cp);
                    continue;
                }
            }
            if contents.len() + prefixes.len() >= max {
                truncated = true;
                break;
            }
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            last = Some(key.clone());
            contents.push(Object {
                key: Some(key),
                size: Some(meta.len() as i64),
                e_tag: Some(ETag::Strong(etag_of(&meta))),
                last_modified: timestamp(&meta),
                storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                ..Default::default()
            });
        }
        let count = contents.len() + prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket.clone()),
            prefix: Some(prefix),
            delimiter: i.delimiter.clone(),
            max_keys: Some(max as i32),
            key_count: Some(count as i32),
            is_truncated: Some(truncated),
            continuation_token: i.continuation_token.clone(),
            next_continuation_token: if truncated {
                last.map(|l| hex::encode(l.as_bytes()))
            } else {
                None
            },
            start_after: i.start_after.clone(),
            contents: Some(contents),
            common_prefixes: Some(prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
            encoding_type: i.encoding_type.clone(),
            ..Default::default()
        }))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let target = Self::object_file(&dir, &req.input.key)?;
        let (src, key) = self.copy_source(&req.input.copy_source)?;
        if !src.is_file() {
            return Err(no_such_key(key));
        }
        let tmp_dir = dir.join(TMP_DIR);
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| internal("temporary directory", e))?;
        let tmp = tmp_dir.join(new_id());
        tokio::fs::copy(&src, &tmp)
            .await
            .map_err(|e| internal("copying the object", e))?;
        let meta = Self::commit(&tmp, &target).await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(etag_of(&meta))),
                last_modified: timestamp(&meta),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let path = Self::object_file(&dir, &req.input.key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Self::prune(&dir, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal("deleting the object", e)),
        }
        Ok(S3Response::with_status(
            DeleteObjectOutput::default(),
            hyper::StatusCode::NO_CONTENT,
        ))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in &req.input.delete.objects {
            let result = Self::object_file(&dir, &o.key).and_then(|p| match std::fs::remove_file(&p) {
                Ok(()) => {
                    Self::prune(&dir, &p);
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(internal("deleting the object", e)),
            });
            match result {
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(o.key.clone()),
                    ..Default::default()
                }),
                Err(e) => errors.push(Error {
                    key: Some(o.key.clone()),
                    code: Some(e.code().as_str().to_string()),
                    message: e.message().map(str::to_string),
                    ..Default::default()
                }),
            }
        }
        let quiet = req.input.delete.quiet.unwrap_or(false);
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!quiet).then_some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        Self::object_file(&dir, &req.input.key)?;
        let id = new_id();
        let up = dir.join(UPLOADS_DIR).join(&id);
        std::fs::create_dir_all(&up).map_err(|e| internal("starting the upload", e))?;
        std::fs::write(up.join("key"), req.input.key.as_bytes()).map_err(|e| internal("starting the upload", e))?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(req.input.bucket.clone()),
            key: Some(req.input.key.clone()),
            upload_id: Some(id),
            checksum_algorithm: req.input.checksum_algorithm.clone(),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let up = upload_dir(&dir, &req.input.upload_id, &req.input.key)?;
        let n = req.input.part_number;
        check_part_number(n)?;
        let mut req = req;
        let upload = take_upload!(req);
        let got = Self::receive_verified(&dir, &req, upload).await?;
        let etag = place_part(&up, n, &got).await?;
        let c = got.checksum;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let up = upload_dir(&dir, &req.input.upload_id, &req.input.key)?;
        let n = req.input.part_number;
        check_part_number(n)?;
        let (src, key) = self.copy_source(&req.input.copy_source)?;
        let mut file = tokio::fs::File::open(&src).await.map_err(|_| no_such_key(key))?;
        let full = file
            .metadata()
            .await
            .map_err(|e| internal("reading the object", e))?
            .len();
        let (start, end) = match req.input.copy_source_range.as_deref() {
            None => (0, full),
            Some(r) => {
                let bad = || {
                    S3Error::with_message(S3ErrorCode::InvalidArgument, format!("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy (`{r}`, the object has {full} bytes)"))
                };
                let (a, b) = r
                    .strip_prefix("bytes=")
                    .and_then(|x| x.split_once('-'))
                    .ok_or_else(bad)?;
                let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= full {
                    return Err(bad());
                }
                (a, b + 1)
            }
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| internal("reading the object", e))?;
        let got = Self::receive(
            &dir,
            Some(stream_of(file, end - start)),
            &Checksum::default(),
            None,
            MAX_PUT_BYTES,
        )
        .await?;
        let etag = place_part(&up, n, &got).await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(etag)),
                last_modified: Some(Timestamp::from(SystemTime::now())),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let up = upload_dir(&dir, &req.input.upload_id, &req.input.key)?;
        let target = Self::object_file(&dir, &req.input.key)?;
        let parts = req
            .input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.clone())
            .unwrap_or_default();
        if parts.is_empty() {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "You must specify at least one part",
            ));
        }
        let mut files = Vec::new();
        let mut prev = 0;
        for (i, p) in parts.iter().enumerate() {
            let n = p.part_number.unwrap_or(0);
            if n <= prev {
                return Err(S3Error::with_message(S3ErrorCode::InvalidPartOrder, "The list of parts was not in ascending order. The parts list must be specified in order by part number."));
            }
            prev = n;
            let etag = p
                .e_tag
                .as_ref()
                .map(|e| e.value().trim_matches('"').to_string())
                .unwrap_or_default();
            let file = up.join(format!("{n:05}-{etag}"));
            let Ok(meta) = std::fs::metadata(&file) else {
                return Err(S3Error::with_message(S3ErrorCode::InvalidPart, format!("One or more of the specified parts could not be found (part {n}, ETag {etag}). The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")));
            };
            if i + 1 < parts.len() && meta.len() < MIN_PART_BYTES {
                return Err(S3Error::with_message(S3ErrorCode::EntityTooSmall, format!("Your proposed upload is smaller than the minimum allowed size: part {n} has {} bytes, and every part but the last needs 5 MiB", meta.len())));
            }
            files.push((file, etag));
        }
        let tmp_dir = dir.join(TMP_DIR);
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| internal("temporary directory", e))?;
        let tmp = tmp_dir.join(new_id());
        let mut out = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| internal("assembling the object", e))?;
        let mut md5s = Vec::new();
        for (f, etag) in &files {
            let mut inp = tokio::fs::File::open(f)
                .await
                .map_err(|e| internal("assembling the object", e))?;
            tokio::io::copy(&mut inp, &mut out)
                .await
                .map_err(|e| internal("assembling the object", e))?;
            md5s.extend(hex::decode(etag).unwrap_or_default());
        }
        out.sync_all().await.map_err(|e| internal("assembling the object", e))?;
        drop(out);
        Self::commit(&tmp, &target).await?;
        let _ = std::fs::remove_dir_all(&up);
        // S3's multipart ETag: the MD5 of the parts' MD5s, and the number of parts.
        let etag = format!(
            "{}-{}",
            hex::encode(<md5::Md5 as md5::Digest>::digest(&md5s)),
            files.len()
        );
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(req.input.bucket.clone()),
            key: Some(req.input.key.clone()),
            e_tag: Some(ETag::Strong(etag)),
            location: Some(format!("/{}/{}", req.input.bucket, req.input.key)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let region = region_of(&req, &self.default_region);
        let dir = self.bucket_in(&req.input.bucket, &region)?;
        let up = upload_dir(&dir, &req.input.upload_id, &req.input.key)?;
        std::fs::remove_dir_all(&up).map_err(|e| internal("aborting the upload", e))?;
        Ok(S3Response::with_status(
            AbortMultipartUploadOutput::default(),
            hyper::StatusCode::NO_CONTENT,
        ))
    }
}

/// How long a temporary file may go unwritten before it is taken for one a killed process left.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Removes the temporary files of uploads whose process was killed (nothing written to them for a
/// day; a live upload writes to its file all the time), so that a bad day does not fill the disk.
fn remove_stale(tmp_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp_dir) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TMP);
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// `len` bytes of an open file, from where it is, as a body.
fn stream_of(file: tokio::fs::File, len: u64) -> StreamingBlob {
    let stream = futures::stream::unfold((file.take(len), false), |(mut f, done)| async move {
        if done {
            return None;
        }
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), (f, false)))
            }
            Err(e) => Some((Err(e), (f, true))),
        }
    });
    StreamingBlob::wrap(stream)
}

/// Puts a received part in place (a part sent again replaces the earlier one); returns its ETag.
async fn place_part(up: &Path, n: i32, got: &Received) -> S3Result<String> {
    let etag = hex::encode(&got.md5);
    if let Ok(entries) = std::fs::read_dir(up) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&format!("{n:05}-")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    LocalS3::commit(&got.tmp, &up.join(format!("{n:05}-{etag}"))).await?;
    Ok(etag)
}

fn check_part_number(n: i32) -> S3Result<()> {
    if !(1..=MAX_PARTS).contains(&n) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Part number must be an integer between 1 and {MAX_PARTS}, inclusive"),
        ));
    }
    Ok(())
}

fn upload_dir(dir: &Path, id: &str, key: &str) -> S3Result<PathBuf> {
    let no_such = || {
        S3Error::with_message(
            S3ErrorCode::NoSuchUpload,
            format!("The specified multipart upload does not exist (`{id}` for `{key}`). The upload ID may be invalid, or the upload may have been aborted or completed."),
        )
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(no_such());
    }
    let up = dir.join(UPLOADS_DIR).join(id);
    match std::fs::read(up.join("key")) {
        Ok(k) if k == key.as_bytes() => Ok(up),
        _ => Err(no_such()),
    }
}

#[cfg(test)]
mod stale_tests {
    use super::*;

    #[test]
    fn temporary_files_a_killed_upload_left_are_removed_after_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        let fresh = dir.path().join("fresh");
        std::fs::write(&old, b"half an upload").unwrap();
        std::fs::write(&fresh, b"an upload in progress").unwrap();
        let two_days_ago = SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 60 * 60);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        remove_stale(dir.path());
        assert!(!old.exists() && fresh.exists());
    }
}
