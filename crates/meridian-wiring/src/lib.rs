//! Wiring: which implementation reaches each region of an execution, from what its pipeline asks
//! for (`backend: local | aws`). The CLI and the server open the engine with this; the engine only
//! sees the ports ([`meridian_region`]).
//!
//! What it must not do: hold logic of its own beyond choosing and opening backends.

use meridian_region::{BackendChoice, ErrorKind, RegionBackend, RegionError, Regions, Say};
use std::collections::BTreeMap;
use std::path::Path;

/// The backends this build of Meridian has.
pub struct Wiring {
    /// Every local region, over the data directory (its stores open on first use).
    local: RegionBackend,
    /// Every AWS region, made on first use (it starts the AWS clients' runtime), one backend per
    /// set of roles to assume (pipelines that deploy to other accounts).
    #[cfg(feature = "aws")]
    aws: std::sync::Mutex<BTreeMap<BTreeMap<String, String>, RegionBackend>>,
}

impl Wiring {
    /// `notice` hears what opening a backend repairs (deployments and stack operations a killed
    /// process left).
    pub fn new(data_dir: &Path, notice: Say) -> Wiring {
        Wiring {
            local: meridian_local::backend::backend(data_dir, notice),
            #[cfg(feature = "aws")]
            aws: Default::default(),
        }
    }

    fn backend(
        &self,
        kind: &str,
        region: &str,
        roles: &BTreeMap<String, String>,
    ) -> Result<RegionBackend, RegionError> {
        match kind {
            "local" => Ok(self.local.clone()),
            "aws" => self.aws(region, roles),
            other => Err(RegionError::new(
                ErrorKind::Invalid,
                format!("region {region}: `{other}` is not a region backend (local, aws)"),
            )
            .region(region)),
        }
    }
}

impl Wiring {
    #[cfg(feature = "aws")]
    fn aws(&self, region: &str, roles: &BTreeMap<String, String>) -> Result<RegionBackend, RegionError> {
        let mut made = self.aws.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = made.get(roles) {
            return Ok(b.clone());
        }
        let options = meridian_aws::AwsOptions {
            roles: roles.clone(),
            ..Default::default()
        };
        let b = meridian_aws::backend::backend(options).map_err(|e| e.region(region))?;
        made.insert(roles.clone(), b.clone());
        Ok(b)
    }

    #[cfg(not(feature = "aws"))]
    fn aws(&self, region: &str, _roles: &BTreeMap<String, String>) -> Result<RegionBackend, RegionError> {
        Err(RegionError::new(
            ErrorKind::Invalid,
            format!(
                "{} to be reached through the `aws` backend, which this build of Meridian leaves out (the AWS SDK is heavy to build): build it with `cargo build --release -p meridian-cli --features aws`, or remove `backend: aws` to deploy to simulated local regions",
                if region == "every region" {
                    "every region of the pipeline is".to_string()
                } else {
                    format!("region {region} is")
                }
            ),
        )
        .region(region))
    }
}

impl meridian_region::Wiring for Wiring {
    fn regions(&self, choice: &BackendChoice) -> Result<Regions, RegionError> {
        let default = choice.default.as_deref().unwrap_or("local");
        let mut regions = Regions::all(self.backend(default, "every region", &choice.roles)?);
        for (region, kind) in &choice.by_region {
            regions = regions.with(region, self.backend(kind, region, &choice.roles)?);
        }
        Ok(regions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_region::Wiring as _;

    fn choice(by_region: &[(&str, &str)]) -> BackendChoice {
        BackendChoice {
            default: None,
            by_region: by_region.iter().map(|(r, k)| (r.to_string(), k.to_string())).collect(),
            roles: Default::default(),
        }
    }

    #[test]
    fn regions_default_to_local_and_unknown_backends_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wiring::new(dir.path(), std::sync::Arc::new(|_: &str| {}));
        let regions = w.regions(&choice(&[])).unwrap();
        assert_eq!(regions.get("eu-west-1").unwrap().kind, "local");
        let e = w.regions(&choice(&[("eu-west-1", "gcp")])).unwrap_err();
        assert!(
            e.to_string().contains("`gcp` is not a region backend (local, aws)"),
            "{e}"
        );
    }

    /// Without the `aws` feature, an AWS region is refused with the command that builds it in.
    #[cfg(not(feature = "aws"))]
    #[test]
    fn a_build_without_aws_says_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wiring::new(dir.path(), std::sync::Arc::new(|_: &str| {}));
        let e = w.regions(&choice(&[("eu-west-1", "aws")])).unwrap_err();
        assert!(
            e.to_string().contains("--features aws") && e.to_string().contains("remove `backend: aws`"),
            "{e}"
        );
    }

    /// With it, an AWS region is reached through the AWS backend (nothing is called yet).
    #[cfg(feature = "aws")]
    #[test]
    fn a_build_with_aws_reaches_aws_regions() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wiring::new(dir.path(), std::sync::Arc::new(|_: &str| {}));
        let regions = w.regions(&choice(&[("eu-west-1", "aws")])).unwrap();
        assert_eq!(regions.get("eu-west-1").unwrap().kind, "aws");
        assert_eq!(regions.get("us-east-1").unwrap().kind, "local");
    }
}
