//! The local regions' parameter store and secrets store, encrypted at rest.
//!
//! Layout under the data directory:
//! - `keys/secrets.key`: 32 random bytes, mode 0600, created on first use;
//! - `regions/<region>/parameters.json` and `regions/<region>/secrets.json`: every value sealed
//!   with ChaCha20-Poly1305 under that key, with the region, kind and name as associated data (a
//!   sealed value copied to another name or region does not open).
//!
//! Secrets keep versions as Secrets Manager does: each `put` adds a version labelled `AWSCURRENT`
//! and moves `AWSPREVIOUS` to the version it replaces, so `secret-id:json-key:AWSPREVIOUS` and
//! `secret-id:::VERSION-ID` references resolve.

use crate::spec::SecretRef;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("failed to {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not a valid store file: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("`{}` must hold exactly 32 bytes", path.display())]
    BadKey { path: PathBuf },
    #[error("the value of {kind} `{name}` in {region} does not open with the key in {}: the key file was replaced, or the store was edited", key.display())]
    Unseal {
        kind: &'static str,
        name: String,
        region: String,
        key: PathBuf,
    },
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
    #[error("`{0}` is not a valid name: use letters, digits and _.-/@ (1 to 512 characters)")]
    InvalidName(String),
    #[error("failed to seal a value")]
    Seal,
}

/// Which store a name lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Systems Manager Parameter Store.
    Parameter,
    /// Secrets Manager.
    Secret,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Parameter => "parameter",
            Kind::Secret => "secret",
        }
    }
    fn file(self) -> &'static str {
        match self {
            Kind::Parameter => "parameters.json",
            Kind::Secret => "secrets.json",
        }
    }
}

/// One entry of a listing: never the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub name: String,
    pub kind: &'static str,
    pub versions: usize,
    /// The current version's id.
    pub version_id: String,
    pub updated: String,
}

#[derive(Serialize, Deserialize, Default)]
struct StoreFile {
    entries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    versions: Vec<Version>,
    /// How many times a value was put (SSM's parameter `Version`).
    #[serde(default)]
    puts: u64,
    /// The parameter's type (`String`, `StringList`, `SecureString`), when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_type: Option<String>,
}

/// What the store knows of a name besides its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// SSM's parameter version: how many times a value was put (1 for the first).
    pub version: u64,
    pub value_type: Option<String>,
    /// When the current value was put (RFC 3339).
    pub updated: String,
    pub version_id: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct Version {
    id: String,
    stages: Vec<String>,
    nonce: String,
    sealed: String,
    created: String,
}

/// The parameter and secrets stores of every local region under one data directory.
#[derive(Clone)]
pub struct SecretStore {
    root: PathBuf,
    key_path: PathBuf,
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SecretError + 'a {
    move |source| SecretError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(b)
}

/// Makes a rename or link in `dir` durable (best effort: not every file system syncs directories).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/@+=,".contains(c))
}

impl SecretStore {
    /// Opens the stores under `data_dir`, creating the key (mode 0600) on first use.
    ///
    /// The key is written whole to a temporary file and then linked to its name, which fails if
    /// another process got there first: a key file is never seen half-written, and two first
    /// uses at once agree on one key (the loser reads the winner's).
    pub fn open(data_dir: &Path) -> Result<SecretStore, SecretError> {
        let keys = data_dir.join("keys");
        let key_path = keys.join("secrets.key");
        let key = match fs::read(&key_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&keys).map_err(io("create", &keys))?;
                let bytes = random::<32>()?;
                let tmp = keys.join(format!(".secrets.key.{}.tmp", hex::encode(random::<6>()?)));
                let mut opts = fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let written = opts.open(&tmp).and_then(|mut f| {
                    f.write_all(&bytes)?;
                    f.sync_all()
                });
                if let Err(e) = written {
                    let _ = fs::remove_file(&tmp);
                    return Err(io("write", &tmp)(e));
                }
                let linked = fs::hard_link(&tmp, &key_path);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        sync_dir(&keys);
                        bytes.to_vec()
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        fs::read(&key_path).map_err(io("read", &key_path))?
                    }
                    Err(e) => return Err(io("create", &key_path)(e)),
                }
            }
            Err(e) => return Err(io("read", &key_path)(e)),
        };
        if key.len() != 32 {
            return Err(SecretError::BadKey { path: key_path });
        }
        Ok(SecretStore {
            root: data_dir.join("regions"),
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            key_path,
        })
    }

    /// A region's directory; the region is one path component whatever it is written as.
    fn region_dir(&self, region: &str) -> PathBuf {
        self.root.join(meridian_core::path::safe_component(region))
    }

    fn path(&self, region: &str, kind: Kind) -> PathBuf {
        self.region_dir(region).join(kind.file())
    }

    fn load(&self, region: &str, kind: Kind) -> Result<StoreFile, SecretError> {
        let path = self.path(region, kind);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SecretError::Corrupt {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Takes the store file's lock (`.<file>.lock` beside it, `flock`), held until the guard is
    /// dropped: every change is read, modified and written under it, so that two processes
    /// writing at once both keep their change.
    fn lock(&self, region: &str, kind: Kind) -> Result<fs::File, SecretError> {
        let dir = self.region_dir(region);
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join(format!(".{}.lock", kind.file()));
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            loop {
                // SAFETY: flock on a descriptor this function owns for the call's duration.
                let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
                if r == 0 {
                    break;
                }
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(io("lock", &path)(e));
                }
            }
        }
        Ok(f)
    }

    /// Replaces the store file atomically: a temporary file, written and synced, renamed over it.
    /// Callers hold [`SecretStore::lock`].
    fn save(&self, region: &str, kind: Kind, file: &StoreFile) -> Result<(), SecretError> {
        let path = self.path(region, kind);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let tmp = dir.join(format!(".{}.{}.tmp", kind.file(), hex::encode(random::<6>()?)));
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| SecretError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let written = fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io("write", &tmp)(e));
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io("replace", &path)(e));
        }
        sync_dir(&dir);
        Ok(())
    }

    fn aad(region: &str, kind: Kind, name: &str) -> Vec<u8> {
        format!("meridian/{region}/{}/{name}", kind.as_str()).into_bytes()
    }

    /// Stores a value; for secrets, a new version that becomes `AWSCURRENT`. Returns the version id.
    pub fn put(&self, region: &str, kind: Kind, name: &str, value: &str) -> Result<String, SecretError> {
        self.put_typed(region, kind, name, value, None)
    }

    /// [`SecretStore::put`] with the parameter's type (`String`, `StringList`, `SecureString`).
    pub fn put_typed(
        &self,
        region: &str,
        kind: Kind,
        name: &str,
        value: &str,
        value_type: Option<&str>,
    ) -> Result<String, SecretError> {
        if !valid_name(name) {
            return Err(SecretError::InvalidName(name.to_string()));
        }
        let _lock = self.lock(region, kind)?;
        let mut file = self.load(region, kind)?;
        let nonce = random::<12>()?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &Self::aad(region, kind, name),
                },
            )
            .map_err(|_| SecretError::Seal)?;
        let id = hex::encode(random::<16>()?);
        let entry = file.entries.entry(name.to_string()).or_insert(Entry {
            versions: Vec::new(),
            puts: 0,
            value_type: None,
        });
        entry.puts = entry.puts.max(entry.versions.len() as u64) + 1;
        if let Some(t) = value_type {
            entry.value_type = Some(t.to_string());
        }
        match kind {
            Kind::Parameter => entry.versions.clear(),
            Kind::Secret => {
                for v in &mut entry.versions {
                    v.stages.retain(|s| s != "AWSPREVIOUS");
                    if let Some(i) = v.stages.iter().position(|s| s == "AWSCURRENT") {
                        v.stages[i] = "AWSPREVIOUS".into();
                    }
                }
            }
        }
        entry.versions.push(Version {
            id: id.clone(),
            stages: vec!["AWSCURRENT".into()],
            nonce: hex::encode(nonce),
            sealed: hex::encode(sealed),
            created: jiff::Timestamp::now().to_string(),
        });
        self.save(region, kind, &file)?;
        Ok(id)
    }

    /// Removes a name and all its versions; false when there was none.
    pub fn delete(&self, region: &str, kind: Kind, name: &str) -> Result<bool, SecretError> {
        let _lock = self.lock(region, kind)?;
        let mut file = self.load(region, kind)?;
        if file.entries.remove(name).is_none() {
            return Ok(false);
        }
        self.save(region, kind, &file)?;
        Ok(true)
    }

    /// A name's version, type and time of its current value.
    pub fn info(&self, region: &str, kind: Kind, name: &str) -> Result<Option<Info>, SecretError> {
        let file = self.load(region, kind)?;
        Ok(file.entries.get(name).and_then(|e| {
            let current = e.versions.iter().find(|v| v.stages.iter().any(|s| s == "AWSCURRENT"))?;
            Some(Info {
                version: e.puts.max(e.versions.len() as u64),
                value_type: e.value_type.clone(),
                updated: current.created.clone(),
                version_id: current.id.clone(),
            })
        }))
    }

    /// The current value of a parameter or secret.
    pub fn get(&self, region: &str, kind: Kind, name: &str) -> Result<Option<String>, SecretError> {
        self.get_version(region, kind, name, None, None)
    }

    /// A value by version stage (default `AWSCURRENT`) or version id.
    pub fn get_version(
        &self,
        region: &str,
        kind: Kind,
        name: &str,
        stage: Option<&str>,
        version_id: Option<&str>,
    ) -> Result<Option<String>, SecretError> {
        let file = self.load(region, kind)?;
        let Some(entry) = file.entries.get(name) else {
            return Ok(None);
        };
        let stage = stage.unwrap_or("AWSCURRENT");
        let version = match version_id {
            Some(id) => entry.versions.iter().find(|v| v.id == id),
            None => entry.versions.iter().find(|v| v.stages.iter().any(|s| s == stage)),
        };
        let Some(v) = version else { return Ok(None) };
        let unseal = || SecretError::Unseal {
            kind: kind.as_str(),
            name: name.to_string(),
            region: region.to_string(),
            key: self.key_path.clone(),
        };
        let nonce = hex::decode(&v.nonce).map_err(|_| unseal())?;
        let sealed = hex::decode(&v.sealed).map_err(|_| unseal())?;
        if nonce.len() != 12 {
            return Err(unseal());
        }
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &Self::aad(region, kind, name),
                },
            )
            .map_err(|_| unseal())?;
        String::from_utf8(plain).map(Some).map_err(|_| unseal())
    }

    /// Names in a region's store, with their version counts; never their values.
    pub fn list(&self, region: &str, kind: Kind) -> Result<Vec<Listed>, SecretError> {
        let file = self.load(region, kind)?;
        Ok(file
            .entries
            .iter()
            .filter_map(|(name, e)| {
                let current = e.versions.iter().find(|v| v.stages.iter().any(|s| s == "AWSCURRENT"))?;
                Some(Listed {
                    name: name.clone(),
                    kind: kind.as_str(),
                    versions: e.versions.len(),
                    version_id: current.id.clone(),
                    updated: current.created.clone(),
                })
            })
            .collect())
    }

    /// Resolves a `secrets-manager` reference: the whole secret, or one key of its JSON.
    pub fn resolve_secret(&self, region: &str, r: &SecretRef) -> Result<Option<String>, ResolveError> {
        // An ARN names the secret by its last part (`...:secret:NAME`); the region in it wins.
        let (region, name) = match r.secret_id.strip_prefix("arn:") {
            Some(_) => {
                let parts: Vec<&str> = r.secret_id.split(':').collect();
                (parts[3].to_string(), parts[6].to_string())
            }
            None => (region.to_string(), r.secret_id.clone()),
        };
        let lookup = |name: &str| {
            self.get_version(
                &region,
                Kind::Secret,
                name,
                r.version_stage.as_deref(),
                r.version_id.as_deref(),
            )
            .map_err(ResolveError::Store)
        };
        let mut found = lookup(&name)?;
        // A full ARN ends the name with the six random characters Secrets Manager adds.
        if found.is_none() && r.secret_id.starts_with("arn:") {
            if let Some((base, suffix)) = name.rsplit_once('-') {
                if suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
                    found = lookup(base)?;
                }
            }
        }
        let Some(text) = found else {
            return Ok(None);
        };
        let Some(key) = &r.json_key else {
            return Ok(Some(text));
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| ResolveError::NotJson { secret: name.clone() })?;
        Ok(match json.get(key) {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Store(SecretError),
    #[error("secret `{secret}` is not a JSON object, so a JSON key cannot be read from it")]
    NotJson { secret: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("meridian-secrets-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn a_deleted_secret_is_gone_with_its_versions() {
        let dir = tmp("delete");
        let s = SecretStore::open(&dir).unwrap();
        s.put("eu-west-1", Kind::Secret, "db", "one").unwrap();
        s.put("eu-west-1", Kind::Secret, "db", "two").unwrap();
        s.put("eu-west-1", Kind::Secret, "other", "kept").unwrap();
        assert!(s.delete("eu-west-1", Kind::Secret, "db").unwrap());
        assert!(!s.delete("eu-west-1", Kind::Secret, "db").unwrap());
        assert_eq!(s.get("eu-west-1", Kind::Secret, "db").unwrap(), None);
        assert_eq!(
            s.get("eu-west-1", Kind::Secret, "other").unwrap().as_deref(),
            Some("kept")
        );
    }

    #[test]
    fn values_are_sealed_versioned_and_bound_to_their_name() {
        let dir = tmp("seal");
        let s = SecretStore::open(&dir).unwrap();
        let v1 = s
            .put("eu-west-1", Kind::Secret, "db", r#"{"password":"hunter2-first"}"#)
            .unwrap();
        s.put(
            "eu-west-1",
            Kind::Secret,
            "db",
            r#"{"password":"hunter2-second","port":5432}"#,
        )
        .unwrap();
        let raw = fs::read_to_string(dir.join("regions/eu-west-1/secrets.json")).unwrap();
        assert!(!raw.contains("hunter2"), "values are sealed on disk");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("keys/secrets.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let r = |t: &str| s.resolve_secret("eu-west-1", &SecretRef::parse(t).unwrap()).unwrap();
        assert_eq!(r("db:password").as_deref(), Some("hunter2-second"));
        assert_eq!(r("db:port").as_deref(), Some("5432"));
        assert_eq!(r("db:password:AWSPREVIOUS").as_deref(), Some("hunter2-first"));
        assert_eq!(r(&format!("db:password::{v1}")).as_deref(), Some("hunter2-first"));
        assert_eq!(r("db:missing"), None);
        assert_eq!(
            r("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db:password").as_deref(),
            Some("hunter2-second")
        );
        // a full ARN, with the six characters Secrets Manager appends to the name
        assert_eq!(
            r("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-a1B2c3:password").as_deref(),
            Some("hunter2-second")
        );
        assert_eq!(
            s.get("us-east-1", Kind::Secret, "db").unwrap(),
            None,
            "stores are per region"
        );
        // a reopened store reads the same key
        let s2 = SecretStore::open(&dir).unwrap();
        assert_eq!(
            s2.get("eu-west-1", Kind::Secret, "db").unwrap().unwrap(),
            r#"{"password":"hunter2-second","port":5432}"#
        );
        // moving a sealed value to another name does not open it
        let edited = raw.replace("\"db\"", "\"other\"");
        fs::write(dir.join("regions/eu-west-1/secrets.json"), edited).unwrap();
        assert!(matches!(
            s.get("eu-west-1", Kind::Secret, "other"),
            Err(SecretError::Unseal { .. })
        ));
        let listed = s.list("eu-west-1", Kind::Secret).unwrap();
        assert_eq!(listed[0].name, "other");
        assert_eq!(listed[0].versions, 2);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Set in a child process: `DIR|REGION|PREFIX|COUNT`, the puts it makes.
    const CHILD_ENV: &str = "MERIDIAN_SECRETS_TEST_CHILD";

    /// Not a test of its own: the body of the child processes of
    /// `concurrent_puts_from_processes_and_threads_lose_nothing` (it does nothing unless run as one).
    #[test]
    fn child_writer() {
        let Ok(spec) = std::env::var(CHILD_ENV) else { return };
        let parts: Vec<&str> = spec.split('|').collect();
        let s = SecretStore::open(Path::new(parts[0])).unwrap();
        let count: usize = parts[3].parse().unwrap();
        for i in 0..count {
            s.put(parts[1], Kind::Secret, &format!("{}-{i}", parts[2]), "v")
                .unwrap();
        }
    }

    #[test]
    fn concurrent_puts_from_processes_and_threads_lose_nothing() {
        let dir = tmp("race");
        let (procs, threads, each) = (4, 4, 25);
        let exe = std::env::current_exe().unwrap();
        // processes and threads start at once, the key included: none of them finds it
        let children: Vec<_> = (0..procs)
            .map(|p| {
                std::process::Command::new(&exe)
                    .args(["--exact", "secrets::tests::child_writer", "--test-threads=1", "--quiet"])
                    .env(CHILD_ENV, format!("{}|eu-west-1|proc{p}|{each}", dir.display()))
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let s = SecretStore::open(&dir).unwrap();
                    for i in 0..each {
                        s.put("eu-west-1", Kind::Secret, &format!("thread{t}-{i}"), "v")
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for mut c in children {
            assert!(c.wait().unwrap().success(), "a child writer failed");
        }
        let s = SecretStore::open(&dir).unwrap();
        let listed = s.list("eu-west-1", Kind::Secret).unwrap();
        assert_eq!(listed.len(), (procs + threads) * each, "puts were lost");
        for p in 0..procs {
            assert_eq!(
                s.get("eu-west-1", Kind::Secret, &format!("proc{p}-0"))
                    .unwrap()
                    .as_deref(),
                Some("v")
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn regions_are_one_path_component() {
        let dir = tmp("region");
        let s = SecretStore::open(&dir).unwrap();
        s.put("../../escape", Kind::Parameter, "x", "v").unwrap();
        assert!(!dir.join("../escape").exists() && !dir.join("escape").exists());
        assert!(dir.join("regions/..%2F..%2Fescape/parameters.json").is_file());
        assert_eq!(
            s.get("../../escape", Kind::Parameter, "x").unwrap().as_deref(),
            Some("v")
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn parameters_keep_one_value() {
        let dir = tmp("param");
        let s = SecretStore::open(&dir).unwrap();
        s.put("us-east-1", Kind::Parameter, "/app/token", "a").unwrap();
        s.put("us-east-1", Kind::Parameter, "/app/token", "b").unwrap();
        assert_eq!(
            s.get("us-east-1", Kind::Parameter, "/app/token").unwrap().as_deref(),
            Some("b")
        );
        assert_eq!(s.list("us-east-1", Kind::Parameter).unwrap()[0].versions, 1);
        assert!(matches!(
            s.put("us-east-1", Kind::Parameter, "bad name", "x"),
            Err(SecretError::InvalidName(_))
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
