//! What a local archive holds: an OCI image layout, a docker-archive, or a plain root
//! filesystem (and then how many leading directories to strip). Decided from the entries,
//! never from the file name.

use std::collections::BTreeSet;
use std::io::Read;

use crate::error::EngineError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `oci-layout` at the root, as `skopeo copy oci-archive:` writes.
    OciLayout,
    /// `manifest.json` with layer tars, as `docker save` / `skopeo copy docker-archive:` write.
    DockerArchive,
    /// A root filesystem tree, found `strip` directories deep.
    Rootfs { strip: usize },
}

/// Directories that mark the top of a Linux root filesystem.
const ROOT_MARKERS: &[&str] = &[
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt", "opt",
    "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var",
];

const MAX_STRIP: usize = 3;

/// Normalise an entry name: drop `./` and leading `/`, split into components.
pub fn components(name: &str) -> Vec<&str> {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// Classify a tar stream by reading its headers (contents are skipped, not buffered).
pub fn classify<R: Read>(tar_stream: R) -> Result<ArchiveKind, EngineError> {
    let mut archive = cd_archive::guarded_archive(tar_stream);
    let entries = archive.entries().map_err(not_a_tar)?;
    let mut classifier = Classifier::default();
    for entry in entries {
        let entry = entry.map_err(not_a_tar)?;
        let raw = entry.path_bytes();
        classifier.observe(&String::from_utf8_lossy(&raw));
    }
    classifier.finish()
}

/// Entry names seen so far, and what they say about the archive. Fed by [`classify`], or by
/// an extraction that wants the answer without a separate pass.
#[derive(Debug, Default)]
pub struct Classifier {
    names: Vec<Vec<String>>,
    has_oci_layout: bool,
    has_docker_manifest: bool,
    has_image_files: bool,
    /// The first component shared by every name so far (`None` once two differ).
    common_top: Option<Option<String>>,
    count: usize,
}

/// Entries after which a tree that still sits in one non-root folder is taken for a nested one.
const NESTED_AFTER: usize = 32;

impl Classifier {
    pub fn observe(&mut self, name: &str) {
        let comps: Vec<String> = components(name).into_iter().map(str::to_string).collect();
        if comps.len() == 1 && comps[0] == "oci-layout" {
            self.has_oci_layout = true;
        }
        if comps.len() == 1 && comps[0] == "manifest.json" {
            self.has_docker_manifest = true;
        }
        let top = comps.first().map(String::as_str);
        let image_file = match comps.len() {
            1 => matches!(
                top,
                Some("index.json" | "repositories" | "manifest.json" | "oci-layout")
            ),
            n => top == Some("blobs") && n >= 3 && comps[1].starts_with("sha"),
        };
        self.has_image_files |= image_file;
        if let Some(top) = top {
            match &self.common_top {
                None => self.common_top = Some(Some(top.to_string())),
                Some(Some(t)) if t != top => self.common_top = Some(None),
                _ => {}
            }
        }
        self.count += 1;
        if comps.len() <= MAX_STRIP + 1 {
            self.names.push(comps);
        }
    }

    /// Whether the names so far make a root filesystem at the top level unlikely (an image
    /// archive's files, or a tree that so far sits inside one folder that is not a root
    /// directory). Only a hint for giving up a speculative extraction early: [`finish`]
    /// decides.
    ///
    /// [`finish`]: Classifier::finish
    pub fn unlikely_flat(&self) -> bool {
        let nested = self.count >= NESTED_AFTER
            && matches!(&self.common_top, Some(Some(t)) if !ROOT_MARKERS.contains(&t.as_str()));
        self.has_image_files || nested
    }

    pub fn finish(self) -> Result<ArchiveKind, EngineError> {
        if self.count == 0 {
            return Err(EngineError::Other(
                "the archive is empty; expected a root filesystem or an OCI/docker image"
                    .to_string(),
            ));
        }
        if self.has_oci_layout {
            return Ok(ArchiveKind::OciLayout);
        }
        let has_etc = self
            .names
            .iter()
            .any(|c| c.first().is_some_and(|f| f == "etc"));
        if self.has_docker_manifest && !has_etc {
            return Ok(ArchiveKind::DockerArchive);
        }
        best_strip(&self.names)
            .map(|strip| ArchiveKind::Rootfs { strip })
            .ok_or_else(|| {
                EngineError::Other(
                    "the archive does not look like a root filesystem (no bin/, etc/ or usr/ \
                     found) nor an OCI or docker image"
                        .to_string(),
                )
            })
    }
}

/// The strip level whose directory holds the most root markers; all entries deeper than the
/// strip must share one prefix, so `myroot/{bin,etc,usr}` strips `myroot/`.
fn best_strip(names: &[Vec<String>]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for strip in 0..=MAX_STRIP {
        let prefixes: BTreeSet<&[String]> = names
            .iter()
            .filter(|c| c.len() > strip)
            .map(|c| &c[..strip])
            .collect();
        if prefixes.len() != 1 {
            continue;
        }
        let markers: BTreeSet<&str> = names
            .iter()
            .filter(|c| c.len() > strip)
            .map(|c| c[strip].as_str())
            .filter(|n| ROOT_MARKERS.contains(n))
            .collect();
        if !markers.is_empty() && best.is_none_or(|(_, score)| markers.len() > score) {
            best = Some((strip, markers.len()));
        }
    }
    best.map(|(strip, _)| strip)
}

fn not_a_tar(e: std::io::Error) -> EngineError {
    EngineError::Other(format!(
        "the file is not a tar archive, or it is truncated or corrupt ({}); \
         expected a rootfs tarball or an OCI/docker image archive",
        brief_reason(&e)
    ))
}

/// An error's message fit for one line: the tar parser quotes the bad header bytes, which for
/// random input is binary noise, so such messages are cut before the quote.
pub fn brief_reason(e: &dyn std::fmt::Display) -> String {
    const MAX: usize = 300;
    let msg = e.to_string();
    let clean = msg.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if clean && msg.len() <= MAX {
        return msg;
    }
    let head = msg.split(':').next().unwrap_or("");
    if head.len() <= MAX && head.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        head.to_string()
    } else {
        "unreadable data".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(names: &[&str]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for n in names {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            if n.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
            }
            b.append_data(&mut h, n, std::io::empty()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn hint_after(names: &[String]) -> bool {
        let mut c = Classifier::default();
        for n in names {
            c.observe(n);
        }
        c.unlikely_flat()
    }

    #[test]
    fn image_files_and_nested_trees_make_a_flat_rootfs_unlikely_early() {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(hint_after(&owned(&[
            "blobs/",
            "blobs/sha256/",
            "blobs/sha256/abc"
        ])));
        assert!(hint_after(&owned(&["manifest.json"])));
        assert!(hint_after(&owned(&["./index.json"])));
        let nested: Vec<String> = (0..40).map(|i| format!("myroot/usr/f{i}")).collect();
        assert!(!hint_after(&nested[..10]), "too early to tell");
        assert!(hint_after(&nested));
        let flat: Vec<String> = (0..40).map(|i| format!("./usr/share/f{i}")).collect();
        assert!(!hint_after(&flat), "usr/ is a root directory");
        let mut mixed = owned(&["./bin/", "./etc/passwd"]);
        mixed.extend(nested);
        assert!(!hint_after(&mixed));
        assert!(!hint_after(&owned(&[
            "./blobs/readme",
            "./etc/",
            "./bin/sh"
        ])));
    }

    #[test]
    fn rootfs_at_top_level() {
        let t = tar_of(&[
            "./",
            "./bin/",
            "./bin/sh",
            "./etc/",
            "./etc/passwd",
            "./usr/",
        ]);
        assert_eq!(classify(&t[..]).unwrap(), ArchiveKind::Rootfs { strip: 0 });
    }

    #[test]
    fn rootfs_inside_one_folder_is_stripped() {
        let t = tar_of(&[
            "myroot/",
            "myroot/bin/sh",
            "myroot/etc/passwd",
            "myroot/usr/lib/x",
        ]);
        assert_eq!(classify(&t[..]).unwrap(), ArchiveKind::Rootfs { strip: 1 });
        let t = tar_of(&["a/b/bin/sh", "a/b/etc/passwd", "a/b/usr/x"]);
        assert_eq!(classify(&t[..]).unwrap(), ArchiveKind::Rootfs { strip: 2 });
    }

    #[test]
    fn a_root_with_an_odd_folder_named_like_a_root_is_not_stripped() {
        let t = tar_of(&["bin/sh", "etc/passwd", "usr/bin/x", "home/u/etc/y"]);
        assert_eq!(classify(&t[..]).unwrap(), ArchiveKind::Rootfs { strip: 0 });
    }

    #[test]
    fn image_archives_are_recognised() {
        let t = tar_of(&["oci-layout", "index.json", "blobs/sha256/ab"]);
        assert_eq!(classify(&t[..]).unwrap(), ArchiveKind::OciLayout);
        let t = tar_of(&["manifest.json", "repositories", "abc.tar", "abc.json"]);
        assert_eq!(classify(&t[..]).unwrap(), ArchiveKind::DockerArchive);
    }

    #[test]
    fn reasons_with_binary_noise_are_cut() {
        assert_eq!(
            brief_reason(&"unexpected end of file"),
            "unexpected end of file"
        );
        assert_eq!(
            brief_reason(
                &"numeric field did not have utf-8 text: \u{1}\u{fffd}x when getting cksum"
            ),
            "numeric field did not have utf-8 text"
        );
        assert_eq!(brief_reason(&"\u{1}\u{2}"), "unreadable data");
    }

    #[test]
    fn junk_is_refused() {
        assert!(classify(&b"not a tar at all, just some text"[..]).is_err());
        assert!(classify(&tar_of(&["hello.txt", "notes/readme"])[..]).is_err());
        assert!(classify(&[0u8; 0][..]).is_err());
    }
}
