//! A compact on-disk form of [`LayerEntries`], so `diff` can skip decompressing a layer it has
//! already read once. The bytes are derived from a verified blob and only ever read back by
//! this module; anything unexpected decodes to `None` and the caller reads the layer again.

use crate::diff::{IndexNode, LayerEntries, LayerItem};
use crate::inode_walk::InodeKind;

const MAGIC: &[u8] = b"chroot-distro layer index 1\n";

impl LayerEntries {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put_u64(&mut out, self.entries.len() as u64);
        for (path, item) in &self.entries {
            put_bytes(&mut out, path);
            match item {
                LayerItem::HardLink(target) => {
                    out.push(0);
                    put_bytes(&mut out, target);
                }
                LayerItem::Node(n) => {
                    out.push(1);
                    out.push(kind_code(n.kind));
                    put_u64(&mut out, n.size);
                    put_u64(&mut out, u64::from(n.perm));
                    put_u64(&mut out, n.uid);
                    put_u64(&mut out, n.gid);
                    put_u64(&mut out, n.mtime as u64);
                    match &n.link {
                        Some(l) => {
                            out.push(1);
                            put_bytes(&mut out, l);
                        }
                        None => out.push(0),
                    }
                    put_u64(&mut out, u64::from(n.rdev.0));
                    put_u64(&mut out, u64::from(n.rdev.1));
                }
            }
        }
        for list in [&self.whiteouts, &self.opaque_dirs] {
            put_u64(&mut out, list.len() as u64);
            for p in list {
                put_bytes(&mut out, p);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<LayerEntries> {
        let mut r = Cursor {
            rest: bytes.strip_prefix(MAGIC)?,
        };
        let n = r.u64()?;
        let mut entries = Vec::new();
        for _ in 0..n {
            let path = r.bytes()?;
            let item = match r.byte()? {
                0 => LayerItem::HardLink(r.bytes()?),
                1 => {
                    let kind = kind_from(r.byte()?)?;
                    let size = r.u64()?;
                    let perm = u32::try_from(r.u64()?).ok()?;
                    let uid = r.u64()?;
                    let gid = r.u64()?;
                    let mtime = r.u64()? as i64;
                    let link = match r.byte()? {
                        0 => None,
                        1 => Some(r.bytes()?),
                        _ => return None,
                    };
                    let major = u32::try_from(r.u64()?).ok()?;
                    let minor = u32::try_from(r.u64()?).ok()?;
                    LayerItem::Node(IndexNode {
                        kind,
                        size,
                        perm,
                        uid,
                        gid,
                        mtime,
                        link,
                        rdev: (major, minor),
                    })
                }
                _ => return None,
            };
            entries.push((path, item));
        }
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            for _ in 0..r.u64()? {
                list.push(r.bytes()?);
            }
        }
        if !r.rest.is_empty() {
            return None;
        }
        let [whiteouts, opaque_dirs] = lists;
        Some(LayerEntries {
            entries,
            whiteouts,
            opaque_dirs,
        })
    }
}

fn kind_code(k: InodeKind) -> u8 {
    match k {
        InodeKind::File => 0,
        InodeKind::Dir => 1,
        InodeKind::Symlink => 2,
        InodeKind::Fifo => 3,
        InodeKind::CharDevice => 4,
        InodeKind::BlockDevice => 5,
        InodeKind::Socket => 6,
    }
}

fn kind_from(code: u8) -> Option<InodeKind> {
    Some(match code {
        0 => InodeKind::File,
        1 => InodeKind::Dir,
        2 => InodeKind::Symlink,
        3 => InodeKind::Fifo,
        4 => InodeKind::CharDevice,
        5 => InodeKind::BlockDevice,
        6 => InodeKind::Socket,
        _ => return None,
    })
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n).map(<[u8]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_mode(0o644);
        h
    }

    fn layer() -> LayerEntries {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, "etc", std::io::empty())
            .expect("append");
        let mut h = header();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o4755);
        h.set_uid(1000);
        h.set_mtime(1_000_000);
        h.set_size(3);
        tar.append_data(&mut h, "etc/f", &b"abc"[..])
            .expect("append");
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "etc/l", "f").expect("append");
        let mut h = header();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        tar.append_link(&mut h, "etc/h", "etc/f").expect("append");
        let mut h = header();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        tar.append_data(&mut h, "etc/.wh.gone", std::io::empty())
            .expect("append");
        tar.append_data(&mut h, "var/.wh..wh..opq", std::io::empty())
            .expect("append");
        let bytes = tar.into_inner().expect("tar");
        LayerEntries::read(&bytes[..]).expect("read")
    }

    #[test]
    fn round_trips_every_kind_of_entry() {
        let l = layer();
        assert_eq!(l.entries.len(), 4);
        assert_eq!(l.whiteouts.len(), 1);
        assert_eq!(l.opaque_dirs.len(), 1);
        let encoded = l.encode();
        assert_eq!(LayerEntries::decode(&encoded), Some(l));
    }

    #[test]
    fn damaged_bytes_decode_to_none() {
        let encoded = layer().encode();
        assert!(LayerEntries::decode(&encoded[..encoded.len() - 1]).is_none());
        assert!(LayerEntries::decode(b"something else").is_none());
        let mut extra = encoded.clone();
        extra.push(0);
        assert!(LayerEntries::decode(&extra).is_none());
    }
}
