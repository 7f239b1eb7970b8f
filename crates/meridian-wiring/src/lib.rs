//! Wiring: which implementation reaches each region of an execution, from what its pipeline asks
//! for (`backend: local | aws`). The CLI and the server open the engine with this; the engine only
//! sees the ports ([`meridian_region`]).
//!
//! What it must not do: hold logic of its own beyond choosing and opening backends.

use meridian_region::{BackendChoice, ErrorKind, RegionBackend, RegionError, Regions, Say};
use std::path::Path;

/// The backends this build of Meridian has.
pub struct Wiring {
    /// Every local region, over the data directory (its stores open on first use).
    local: RegionBackend,
    /// Every AWS region, made on first use (it starts the AWS clients' runtime).
    #[cfg(feature = "aws")]
    aws: std::sync::OnceLock<RegionBackend>,
}

impl Wiring {
    /// `notice` hears what opening a backend repairs (deployments and stack operations a killed
    /// process left).
    pub fn new(data_dir: &Path, notice: Say) -> Wiring {
        Wiring {
            local: meridian_local::backend::backend(data_dir, notice),
            #[cfg(feature = "aws")]
            aws: std::sync::OnceLock::new(),
        }
    }

    fn backend(&self, kind: &str, region: &str) -> Result<RegionBackend, RegionError> {
        match kind {
            "local" => Ok(self.local.clone()),
            "aws" => self.aws(region),
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
    fn aws(&self, region: &str) -> Result<RegionBackend, RegionError> {
        if let Some(b) = self.aws.get() {
            return Ok(b.clone());
        }
        let made = meridian_aws::backend::backend(meridian_aws::AwsOptions::default()).map_err(|e| e.region(region))?;
        Ok(self.aws.get_or_init(|| made).clone())
    }

    #[cfg(not(feature = "aws"))]
    fn aws(&self, region: &str) -> Result<RegionBackend, RegionError> {
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
        let mut regions = Regions::all(self.backend(default, "every region")?);
        for (region, kind) in &choice.by_region {
            regions = regions.with(region, self.backend(kind, region)?);
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
