//! AWS region names. Local regions use the same names as AWS so that a pipeline written for AWS
//! runs locally unchanged.

use std::fmt;
use std::str::FromStr;

/// Every commercial, GovCloud, China and sovereign region name that AWS had announced when this
/// list was last updated. A name outside it is rejected with the closest known name as a hint.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// A validated AWS region name such as `us-east-1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RegionId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error("`{name}` is not an AWS region name{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown { name: String, suggestion: Option<String> },
}

impl RegionError {
    /// The closest known region name, when one is close enough to be a likely typo.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            RegionError::Unknown { suggestion, .. } => suggestion.as_deref(),
        }
    }
}

impl RegionId {
    pub fn new(name: &str) -> Result<Self, RegionError> {
        if KNOWN_REGIONS.binary_search(&name).is_ok() {
            Ok(RegionId(name.to_string()))
        } else {
            Err(RegionError::Unknown {
                name: name.to_string(),
                suggestion: closest_region(name),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for RegionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RegionId::new(&s).map_err(serde::de::Error::custom)
    }
}

impl FromStr for RegionId {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionId::new(s)
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RegionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The known region with the smallest edit distance to `name`, if it is at most 3 edits away.
pub fn closest_region(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase().replace('_', "-");
    KNOWN_REGIONS
        .iter()
        .map(|r| (edit_distance(&lower, r), *r))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, r)| r.to_string())
}

/// Levenshtein distance over bytes; names here are short ASCII strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_for_binary_search() {
        let mut sorted = KNOWN_REGIONS.to_vec();
        sorted.sort();
        assert_eq!(sorted, KNOWN_REGIONS);
    }

    #[test]
    fn accepts_real_regions_and_suggests_for_typos() {
        assert_eq!(RegionId::new("eu-west-1").unwrap().as_str(), "eu-west-1");
        let err = RegionId::new("us-esat-1").unwrap_err();
        assert_eq!(err.suggestion(), Some("us-east-1"));
        assert_eq!(
            err.to_string(),
            "`us-esat-1` is not an AWS region name (did you mean `us-east-1`?)"
        );
        assert_eq!(RegionId::new("mars-north-1").unwrap_err().suggestion(), None);
    }
}
