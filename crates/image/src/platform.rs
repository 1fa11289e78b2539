//! Target platforms: chroot-distro's CPU names (`aarch64`, `arm`, ...) and Docker's
//! `os/arch[/variant]` strings, with containerd-style normalisation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("unknown architecture '{0}'; use aarch64, arm, i686, riscv64, x86_64 or an os/arch[/variant] string like linux/arm64")]
    Unknown(String),
}

/// An OCI platform. In descriptors it is the `platform` object (`os.version` and
/// `os.features` are ignored: we only run Linux images).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform of the machine running this binary.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86" => "i686",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            other => other,
        };
        Platform::from_arch_name(arch).unwrap_or_else(|| Platform::new("linux", arch, None))
    }

    /// chroot-distro's CPU names.
    fn from_arch_name(name: &str) -> Option<Platform> {
        Some(match name {
            "aarch64" => Platform::new("linux", "arm64", None),
            "arm" => Platform::new("linux", "arm", Some("v7")),
            "i686" => Platform::new("linux", "386", None),
            "riscv64" => Platform::new("linux", "riscv64", None),
            "x86_64" => Platform::new("linux", "amd64", None),
            _ => return None,
        })
    }

    /// chroot-distro's name for this CPU (`aarch64`, `arm`, `i686`, `riscv64`, `x86_64`).
    pub fn arch_name(&self) -> Option<&'static str> {
        match self.architecture.as_str() {
            "amd64" => Some("x86_64"),
            "arm64" => Some("aarch64"),
            "arm" => Some("arm"),
            "386" => Some("i686"),
            "riscv64" => Some("riscv64"),
            _ => None,
        }
    }

    /// containerd's normalisation: aliases to GOARCH names, arm64 `v8` to no variant, bare
    /// `arm` to `v7`, variants written without the `v`.
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let (arch, mut variant) = match (
            self.architecture.to_ascii_lowercase().as_str(),
            &self.variant,
        ) {
            ("aarch64", v) => ("arm64".to_string(), v.clone()),
            ("x86_64" | "x86-64", v) => ("amd64".to_string(), v.clone()),
            ("i386" | "i686", _) => ("386".to_string(), None),
            ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
            ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
            (a, v) => (a.to_string(), v.clone()),
        };
        if let Some(v) = &variant {
            if v.chars().all(|c| c.is_ascii_digit()) {
                variant = Some(format!("v{v}"));
            }
        }
        match arch.as_str() {
            "arm64" if matches!(variant.as_deref(), Some("v8")) => variant = None,
            "arm" if variant.is_none() => variant = Some("v7".to_string()),
            _ => {}
        }
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }

    /// Whether an image for `candidate` runs on this platform.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.match_score(candidate).is_some()
    }

    /// How well `candidate` fits this platform: higher is better, `None` is unusable. An exact
    /// variant beats a candidate without one, which beats an older compatible arm variant.
    pub fn match_score(&self, candidate: &Platform) -> Option<u8> {
        let want = self.normalized();
        let have = candidate.normalized();
        if want.os != have.os || want.architecture != have.architecture {
            return None;
        }
        match (&want.variant, &have.variant) {
            (w, h) if w == h => Some(3),
            (Some(_), None) => Some(2),
            // An arm v7 CPU runs v6 and v5 code.
            (Some(w), Some(h)) if want.architecture == "arm" && arm_level(h) < arm_level(w) => {
                Some(1)
            }
            // No variant asked for: any variant will do, but less than none at all.
            (None, Some(_)) => Some(1),
            _ => None,
        }
    }

    /// Index of the best candidate for this platform.
    pub fn select<'a>(&self, candidates: impl IntoIterator<Item = &'a Platform>) -> Option<usize> {
        let mut best: Option<(u8, usize)> = None;
        for (i, c) in candidates.into_iter().enumerate() {
            if let Some(score) = self.match_score(c) {
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }
}

fn arm_level(v: &str) -> u32 {
    v.trim_start_matches('v').parse().unwrap_or(0)
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PlatformError::Unknown(s.to_string());
        if let Some(p) = Platform::from_arch_name(s) {
            return Ok(p);
        }
        let parts: Vec<&str> = s.split('/').collect();
        let p = match parts.as_slice() {
            [arch] => Platform::new("linux", arch, None),
            [os, arch] if *os == "linux" => Platform::new(os, arch, None),
            [os, arch, variant] if *os == "linux" && !variant.is_empty() => {
                Platform::new(os, arch, Some(variant))
            }
            _ => return Err(err()),
        };
        let p = p.normalized();
        const KNOWN: &[&str] = &[
            "amd64", "arm64", "arm", "386", "riscv64", "ppc64le", "s390x", "mips64le", "loong64",
        ];
        if KNOWN.contains(&p.architecture.as_str()) {
            Ok(p)
        } else {
            Err(err())
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn chroot_distro_names_map_to_docker_platforms() {
        assert_eq!(p("aarch64").to_string(), "linux/arm64");
        assert_eq!(p("arm").to_string(), "linux/arm/v7");
        assert_eq!(p("i686").to_string(), "linux/386");
        assert_eq!(p("riscv64").to_string(), "linux/riscv64");
        assert_eq!(p("x86_64").to_string(), "linux/amd64");
        for name in ["aarch64", "arm", "i686", "riscv64", "x86_64"] {
            assert_eq!(p(name).arch_name(), Some(name));
        }
    }

    #[test]
    fn docker_platform_strings_normalise() {
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm64"), p("arm64"));
        assert_eq!(p("linux/arm/v6").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/amd64"), p("x86_64"));
        assert!("windows/amd64".parse::<Platform>().is_err());
        assert!("sparc".parse::<Platform>().is_err());
        assert!("linux/arm64/v8/x".parse::<Platform>().is_err());
    }

    #[test]
    fn host_platform_has_a_chroot_distro_name() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
    }

    #[test]
    fn arm64_v8_matches_no_variant_and_exact_variant_is_preferred() {
        let arm64 = p("aarch64");
        assert!(arm64.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(arm64.matches(&Platform::new("linux", "arm64", None)));
        assert!(!arm64.matches(&Platform::new("linux", "amd64", None)));
        let armv7 = p("arm");
        let candidates = [
            Platform::new("linux", "arm", Some("v6")),
            Platform::new("linux", "arm", Some("v7")),
            Platform::new("linux", "arm64", Some("v8")),
        ];
        assert_eq!(armv7.select(&candidates), Some(1));
        assert_eq!(armv7.select(&candidates[..1]), Some(0));
        assert_eq!(p("linux/arm/v6").select(&candidates[1..]), None);
        assert_eq!(arm64.select(&candidates), Some(2));
        assert_eq!(p("riscv64").select(&candidates), None);
    }

    #[test]
    fn descriptor_platform_json_round_trips() {
        let j = r#"{"architecture":"arm","os":"linux","variant":"v7","os.features":["x"]}"#;
        let pl: Platform = serde_json::from_str(j).unwrap();
        assert_eq!(pl, p("arm"));
        assert_eq!(
            serde_json::to_string(&pl).unwrap(),
            r#"{"os":"linux","architecture":"arm","variant":"v7"}"#
        );
    }
}
