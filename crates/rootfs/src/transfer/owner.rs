//! `--chown USER[:GROUP]`, `USER:`, `:GROUP`, names or numbers, looked up in the destination's
//! `/etc/passwd` and `/etc/group` (read inside the container root when the destination is one).

use super::{Owner, TransferError};

/// The user and group databases of the destination, as read from its files.
#[derive(Debug, Default, Clone)]
pub struct AccountFiles {
    pub passwd: String,
    pub group: String,
}

/// Parse an owner spec. `USER` changes only the user, `USER:` also sets the user's login
/// group (as chown(1) does), `USER:GROUP` both, `:GROUP` only the group.
pub fn parse_owner(spec: &str, accounts: &AccountFiles) -> Result<Owner, TransferError> {
    let bad = |why: String| TransferError::Owner(why);
    if spec.is_empty() || spec == ":" {
        return Err(bad("an empty owner; use USER, USER:GROUP or :GROUP".into()));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut owner = Owner::default();
    let mut login_gid = None;
    if !user.is_empty() {
        let (uid, gid) = lookup_user(user, &accounts.passwd)
            .ok_or_else(|| bad(format!("no user '{user}' in the destination's /etc/passwd")))?;
        owner.uid = Some(uid);
        login_gid = gid;
    }
    match group {
        None => {}
        Some("") => {
            owner.gid = Some(login_gid.ok_or_else(|| {
                bad(format!(
                    "user '{user}' has no login group in /etc/passwd; name the group: {user}:GROUP"
                ))
            })?);
        }
        Some(g) => {
            owner.gid =
                Some(lookup_group(g, &accounts.group).ok_or_else(|| {
                    bad(format!("no group '{g}' in the destination's /etc/group"))
                })?);
        }
    }
    Ok(owner)
}

/// A numeric id (any value but the reserved -1), or the uid and login gid of a named user.
fn lookup_user(user: &str, passwd: &str) -> Option<(u32, Option<u32>)> {
    if let Some(uid) = numeric(user) {
        let gid = passwd_fields(passwd)
            .find(|f| f.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(uid))
            .and_then(|f| f.get(3).and_then(|s| s.parse().ok()));
        return Some((uid, gid));
    }
    passwd_fields(passwd)
        .find(|f| f.first() == Some(&user))
        .and_then(|f| {
            let uid = numeric(f.get(2)?)?;
            Some((uid, f.get(3).and_then(|s| numeric(s))))
        })
}

fn lookup_group(group: &str, groups: &str) -> Option<u32> {
    if let Some(gid) = numeric(group) {
        return Some(gid);
    }
    passwd_fields(groups)
        .find(|f| f.first() == Some(&group))
        .and_then(|f| numeric(f.get(2)?))
}

fn numeric(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

fn passwd_fields(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> AccountFiles {
        AccountFiles {
            passwd: "root:x:0:0::/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n".into(),
            group: "root:x:0:\nstaff:x:50:alice\nalice:x:1001:\n".into(),
        }
    }

    #[test]
    fn names_numbers_and_group_only_forms() {
        let a = accounts();
        let o = |s: &str| parse_owner(s, &a).unwrap();
        assert_eq!(
            o("alice"),
            Owner {
                uid: Some(1000),
                gid: None
            }
        );
        assert_eq!(
            o("alice:staff"),
            Owner {
                uid: Some(1000),
                gid: Some(50)
            }
        );
        assert_eq!(
            o("alice:"),
            Owner {
                uid: Some(1000),
                gid: Some(1001)
            }
        );
        assert_eq!(
            o(":staff"),
            Owner {
                uid: None,
                gid: Some(50)
            }
        );
        assert_eq!(
            o("4242:4343"),
            Owner {
                uid: Some(4242),
                gid: Some(4343)
            }
        );
        assert_eq!(
            o(":7"),
            Owner {
                uid: None,
                gid: Some(7)
            }
        );
    }

    #[test]
    fn unknown_names_are_errors_that_say_where_they_looked() {
        let a = accounts();
        let err = parse_owner("bob", &a).unwrap_err().to_string();
        assert!(err.contains("no user 'bob'"), "{err}");
        assert!(parse_owner(":wheel", &a).is_err());
        assert!(parse_owner(":", &a).is_err());
        assert!(parse_owner("4294967295", &a).is_err());
    }
}
