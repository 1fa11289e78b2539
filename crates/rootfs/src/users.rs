//! Accounts of a container, read from its own `/etc/passwd` and `/etc/group` (through the
//! root, never the host's NSS, which would answer with the host's users).

use std::io;

use crate::root::Rootfs;

/// Who a `--user` spec names inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// The passwd name, when the uid has an entry.
    pub name: Option<String>,
    /// The home directory (`/` when the uid has no entry).
    pub home: String,
    pub shell: Option<String>,
    /// The groups to set with `setgroups`: the primary gid first, then every group that lists
    /// the user as a member. Just the given gid when the spec names a group.
    pub supplementary_gids: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user '{0}' not found in the container's /etc/passwd")]
    UserNotFound(String),
    #[error("group '{0}' not found in the container's /etc/group")]
    GroupNotFound(String),
    #[error("invalid user '{0}'; use NAME, UID, NAME:GROUP or UID:GID")]
    Invalid(String),
    #[error("cannot read the container's {file}: {source}")]
    Read {
        file: &'static str,
        #[source]
        source: io::Error,
    },
}

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Parse passwd text; malformed lines are ignored, as glibc does.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parse group text; malformed lines are ignored.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// The container's account files, read once.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub passwd: Vec<PasswdEntry>,
    pub groups: Vec<GroupEntry>,
}

impl Accounts {
    /// Read `/etc/passwd` and `/etc/group` inside `root`; a missing file counts as empty.
    pub fn read(root: &Rootfs) -> Result<Accounts, UserError> {
        let read = |file: &'static str| -> Result<String, UserError> {
            let bytes = root
                .read_optional(file)
                .map_err(|source| UserError::Read { file, source })?
                .unwrap_or_default();
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        Ok(Accounts {
            passwd: parse_passwd(&read("/etc/passwd")?),
            groups: parse_group(&read("/etc/group")?),
        })
    }

    /// Resolve `name`, `uid`, `name:group`, `uid:gid`, `name:gid` or `uid:group`.
    pub fn resolve_user(&self, spec: &str) -> Result<ResolvedUser, UserError> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user.is_empty() || group.is_some_and(str::is_empty) {
            return Err(UserError::Invalid(spec.to_string()));
        }
        let entry = match user.parse::<u32>() {
            Ok(uid) => self.passwd.iter().find(|p| p.uid == uid),
            Err(_) => Some(
                self.passwd
                    .iter()
                    .find(|p| p.name == user)
                    .ok_or_else(|| UserError::UserNotFound(user.to_string()))?,
            ),
        };
        let mut resolved = match entry {
            Some(p) => ResolvedUser {
                uid: p.uid,
                gid: p.gid,
                name: Some(p.name.clone()),
                home: if p.home.is_empty() {
                    "/".into()
                } else {
                    p.home.clone()
                },
                shell: (!p.shell.is_empty()).then(|| p.shell.clone()),
                supplementary_gids: Vec::new(),
            },
            // A bare uid with no passwd entry is allowed (as in Docker): gid 0, home `/`.
            None => ResolvedUser {
                uid: user
                    .parse()
                    .map_err(|_| UserError::Invalid(spec.to_string()))?,
                gid: 0,
                name: None,
                home: "/".into(),
                shell: None,
                supplementary_gids: Vec::new(),
            },
        };
        match group {
            Some(g) => {
                resolved.gid = self.resolve_group(g)?;
                resolved.supplementary_gids = vec![resolved.gid];
            }
            None => {
                let mut gids = vec![resolved.gid];
                if let Some(name) = &resolved.name {
                    for g in &self.groups {
                        if g.members.iter().any(|m| m == name) && !gids.contains(&g.gid) {
                            gids.push(g.gid);
                        }
                    }
                }
                resolved.supplementary_gids = gids;
            }
        }
        Ok(resolved)
    }

    /// Resolve a group name or number (a number need not exist in `/etc/group`).
    pub fn resolve_group(&self, spec: &str) -> Result<u32, UserError> {
        if let Ok(gid) = spec.parse::<u32>() {
            return Ok(gid);
        }
        self.groups
            .iter()
            .find(|g| g.name == spec)
            .map(|g| g.gid)
            .ok_or_else(|| UserError::GroupNotFound(spec.to_string()))
    }
}

/// Resolve a `--user` spec against the container's own account files.
pub fn resolve_user(root: &Rootfs, spec: &str) -> Result<ResolvedUser, UserError> {
    Accounts::read(root)?.resolve_user(spec)
}

/// Resolve a group name or gid against the container's `/etc/group`.
pub fn resolve_group(root: &Rootfs, spec: &str) -> Result<u32, UserError> {
    Accounts::read(root)?.resolve_group(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # a comment\n\
        broken line\n\
        alice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh\n\
        nohome:x:1001:1001::::\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:alice,bob\n\
        audio:x:29:alice\n\
        alice:x:1000:\n\
        staff:x:50:\n";

    fn accounts() -> Accounts {
        Accounts {
            passwd: parse_passwd(PASSWD),
            groups: parse_group(GROUP),
        }
    }

    #[test]
    fn name_resolves_with_home_shell_and_member_groups() {
        let u = accounts().resolve_user("alice").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.name.as_deref(), Some("alice"));
        assert_eq!(u.home, "/home/alice");
        assert_eq!(u.shell.as_deref(), Some("/bin/zsh"));
        assert_eq!(u.supplementary_gids, vec![1000, 10, 29]);
    }

    #[test]
    fn uid_with_an_entry_resolves_like_its_name() {
        assert_eq!(
            accounts().resolve_user("1000").unwrap(),
            accounts().resolve_user("alice").unwrap()
        );
    }

    #[test]
    fn unknown_uid_is_allowed_with_root_home() {
        let u = accounts().resolve_user("4242").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.name, u.home.as_str()),
            (4242, 0, None, "/")
        );
        assert_eq!(u.supplementary_gids, vec![0]);
    }

    #[test]
    fn group_part_accepts_names_and_numbers() {
        let a = accounts();
        let u = a.resolve_user("alice:staff").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.supplementary_gids.clone()),
            (1000, 50, vec![50])
        );
        let u = a.resolve_user("alice:77").unwrap();
        assert_eq!(u.gid, 77);
        let u = a.resolve_user("0:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (0, 10));
        let u = a.resolve_user("5000:5001").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (5000, 5001, "/"));
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let a = accounts();
        assert_eq!(
            a.resolve_user("bob").unwrap_err().to_string(),
            "user 'bob' not found in the container's /etc/passwd"
        );
        assert_eq!(
            a.resolve_user("alice:nogroup").unwrap_err().to_string(),
            "group 'nogroup' not found in the container's /etc/group"
        );
        assert!(matches!(a.resolve_user(""), Err(UserError::Invalid(_))));
        assert!(matches!(
            a.resolve_user("alice:"),
            Err(UserError::Invalid(_))
        ));
    }

    #[test]
    fn empty_home_and_shell_fall_back() {
        let u = accounts().resolve_user("nohome").unwrap();
        assert_eq!(u.home, "/");
        assert_eq!(u.shell, None);
    }
}
