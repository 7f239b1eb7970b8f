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
}

impl Wiring {
    /// `notice` hears what opening a backend repairs (deployments and stack operations a killed
    /// process left).
    pub fn new(data_dir: &Path, notice: Say) -> Wiring {
        Wiring {
            local: meridian_local::backend::backend(data_dir, notice),
        }
    }

    fn backend(&self, kind: &str, region: &str) -> Result<RegionBackend, RegionError> {
        match kind {
            "local" => Ok(self.local.clone()),
            "aws" => Err(RegionError::new(
                ErrorKind::Invalid,
                format!(
                    "region {region} is to be reached through the `aws` backend, whose stacks and traffic shifting Meridian cannot run yet (`meridian bootstrap` and artifact stores on S3 work; see docs/aws.md): remove `backend: aws` to deploy to the simulated {region}"
                ),
            )
            .region(region)),
            other => Err(RegionError::new(
                ErrorKind::Invalid,
                format!("region {region}: `{other}` is not a region backend (local, aws)"),
            )
            .region(region)),
        }
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
