//! Turning archive names into clean paths relative to the root.
//!
//! Names are cleaned lexically before anything touches the disk: a leading `/` is dropped (an
//! absolute name means "from the layer root"), `.` and empty components vanish, and `..` is
//! refused outright rather than resolved, so no name can even ask to leave the root.

/// A cleaned name: components joined by `/`, empty for the root itself.
pub(crate) type RelPath = Vec<u8>;

/// Why a name cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadName {
    /// A `..` component.
    Climbs,
    /// A NUL byte (possible in a PAX `path`).
    Nul,
}

/// Split a raw archive name into clean components.
pub(crate) fn components(raw: &[u8]) -> Result<Vec<&[u8]>, BadName> {
    if raw.contains(&0) {
        return Err(BadName::Nul);
    }
    let mut out = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(BadName::Climbs),
            _ => out.push(part),
        }
    }
    Ok(out)
}

pub(crate) fn join(parts: &[&[u8]]) -> RelPath {
    parts.join(&b'/')
}

/// `a/b/c` -> (`a/b`, `c`); `c` -> (``, `c`).
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    }
}

pub(crate) fn child(parent: &[u8], name: &[u8]) -> RelPath {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    if !parent.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

pub(crate) fn depth(path: &[u8]) -> usize {
    if path.is_empty() {
        0
    } else {
        1 + path.iter().filter(|&&b| b == b'/').count()
    }
}

/// How an archive maps onto the root: keep only names under a prefix (stripping it), then strip
/// a number of leading components.
pub(crate) struct NameMap {
    prefix: Option<Vec<Vec<u8>>>,
    strip: usize,
}

impl NameMap {
    pub(crate) fn new(only_under: Option<&std::path::Path>, strip: usize) -> Result<Self, BadName> {
        use std::os::unix::ffi::OsStrExt;
        let prefix = match only_under {
            Some(p) => Some(
                components(p.as_os_str().as_bytes())?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
            ),
            None => None,
        };
        Ok(NameMap { prefix, strip })
    }

    /// The root-relative path for an archive name; `Ok(None)` when the name lies outside the
    /// kept prefix or has too few components for the strip.
    pub(crate) fn map(&self, raw: &[u8]) -> Result<Option<RelPath>, BadName> {
        let parts = components(raw)?;
        let mut rest = &parts[..];
        if let Some(prefix) = &self.prefix {
            if rest.len() < prefix.len() || rest.iter().zip(prefix).any(|(a, b)| *a != &b[..]) {
                return Ok(None);
            }
            rest = &rest[prefix.len()..];
        }
        if self.strip > 0 {
            if rest.len() < self.strip {
                return Ok(None);
            }
            rest = &rest[self.strip..];
        }
        Ok(Some(join(rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_are_cleaned_lexically() {
        let map = NameMap::new(None, 0).unwrap();
        assert_eq!(map.map(b"./etc//passwd").unwrap().unwrap(), b"etc/passwd");
        assert_eq!(map.map(b"/etc/passwd").unwrap().unwrap(), b"etc/passwd");
        assert_eq!(map.map(b"./").unwrap().unwrap(), b"");
        assert_eq!(map.map(b"a/../../x"), Err(BadName::Climbs));
        assert_eq!(map.map(b"..").map(|_| ()), Err(BadName::Climbs));
    }

    #[test]
    fn prefix_and_strip_apply_in_order() {
        let map = NameMap::new(Some(Path::new("box/rootfs")), 0).unwrap();
        assert_eq!(map.map(b"box/rootfs/etc/x").unwrap().unwrap(), b"etc/x");
        assert_eq!(map.map(b"box/rootfs/").unwrap().unwrap(), b"");
        assert_eq!(map.map(b"box/manifest.json").unwrap(), None);
        assert_eq!(map.map(b"box/rootfsX/a").unwrap(), None);
        let map = NameMap::new(None, 1).unwrap();
        assert_eq!(map.map(b"ubuntu/etc/x").unwrap().unwrap(), b"etc/x");
        assert_eq!(map.map(b"ubuntu/").unwrap().unwrap(), b"");
        assert_eq!(map.map(b"./").unwrap(), None);
    }

    #[test]
    fn split_and_depth() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(depth(b""), 0);
        assert_eq!(depth(b"a/b"), 2);
        assert_eq!(child(b"", b"x"), b"x");
        assert_eq!(child(b"a", b"x"), b"a/x");
    }
}
