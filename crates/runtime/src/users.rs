//! Guest accounts, read from the container's own `/etc/passwd` and `/etc/group` (never the
//! host's NSS: the container's uid 1000 is not the host's).

use crate::error::RuntimeError;

/// The account a session runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, including the primary one.
    pub groups: Vec<u32>,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
    shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
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

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolve `--user` (`name`, `uid`, `name:group`, `uid:gid`; `None` means root) against the
/// container's account files.
///
/// A numeric uid without a passwd entry is accepted as in `docker run --user 1234` (home `/`,
/// primary group 0 unless given); an unknown *name* is an error.
pub fn resolve_user(
    spec: Option<&str>,
    passwd: &str,
    group: &str,
) -> Result<GuestUser, RuntimeError> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let spec = spec.unwrap_or("root");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() {
        return Err(RuntimeError::UnknownUser(spec.to_string()));
    }
    let numeric = user_part.parse::<u32>().ok();
    let entry = match numeric {
        Some(uid) => users.iter().find(|u| u.uid == uid),
        None => users.iter().find(|u| u.name == user_part),
    };
    let mut user = match (entry, numeric) {
        (Some(e), _) => GuestUser {
            name: e.name.clone(),
            uid: e.uid,
            gid: e.gid,
            groups: Vec::new(),
            home: if e.home.is_empty() {
                "/".into()
            } else {
                e.home.clone()
            },
            shell: e.shell.clone(),
        },
        (None, Some(uid)) => GuestUser {
            name: if uid == 0 {
                "root".into()
            } else {
                uid.to_string()
            },
            uid,
            gid: 0,
            groups: Vec::new(),
            home: if uid == 0 { "/root".into() } else { "/".into() },
            shell: String::new(),
        },
        (None, None) if user_part == "root" => GuestUser {
            name: "root".into(),
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            home: "/root".into(),
            shell: String::new(),
        },
        (None, None) => return Err(RuntimeError::UnknownUser(user_part.to_string())),
    };
    if let Some(g) = group_part {
        user.gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| RuntimeError::UnknownGroup(g.to_string()))?,
        };
    }
    let mut supplementary = vec![user.gid];
    for g in &groups {
        if g.members.contains(&user.name) && !supplementary.contains(&g.gid) {
            supplementary.push(g.gid);
        }
    }
    user.groups = supplementary;
    if user.shell.is_empty() {
        user.shell = "/bin/sh".into();
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        svc:x:998:998::/var/lib/svc:\n";
    const GROUP: &str = "root:x:0:\nalice:x:1000:\nstaff:x:50:alice,bob\nsvc:x:998:\n";

    #[test]
    fn default_is_root_with_its_shell() {
        let u = resolve_user(None, PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.shell, "/bin/bash");
    }

    #[test]
    fn by_name_collects_supplementary_groups() {
        let u = resolve_user(Some("alice"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.groups, vec![1000, 50]);
        assert_eq!(u.home, "/home/alice");
    }

    #[test]
    fn by_uid_finds_the_name() {
        let u = resolve_user(Some("1000"), PASSWD, GROUP).unwrap();
        assert_eq!(u.name, "alice");
    }

    #[test]
    fn name_colon_group_and_uid_colon_gid() {
        let u = resolve_user(Some("alice:staff"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = resolve_user(Some("1000:7"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 7));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve_user(Some("mallory"), PASSWD, GROUP),
            Err(RuntimeError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_user(Some("alice:nogroup"), PASSWD, GROUP),
            Err(RuntimeError::UnknownGroup(_))
        ));
    }

    #[test]
    fn unknown_numeric_uid_is_accepted_like_docker() {
        let u = resolve_user(Some("4242"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
    }

    #[test]
    fn empty_shell_falls_back_to_bin_sh() {
        let u = resolve_user(Some("svc"), PASSWD, GROUP).unwrap();
        assert_eq!(u.shell, "/bin/sh");
    }

    #[test]
    fn root_without_passwd_file() {
        let u = resolve_user(None, "", "").unwrap();
        assert_eq!((u.uid, u.home.as_str()), (0, "/root"));
    }
}
