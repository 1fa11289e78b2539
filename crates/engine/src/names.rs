//! Container names: what the store accepts as a directory name.

use crate::error::EngineError;

const MAX_NAME_LEN: usize = 128;

/// Accept a letter or digit first, then letters, digits, `_`, `.` and `-`.
pub fn validate_name(name: &str) -> Result<(), EngineError> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok_first && ok_rest && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(EngineError::InvalidName(name.to_string()))
    }
}

/// Turn an image or archive name into a valid container name, if one can be made.
pub fn sanitize_name(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let name: String = trimmed.chars().take(MAX_NAME_LEN).collect();
    validate_name(&name).ok().map(|()| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in ["ubuntu", "a", "9x", "my-alpine_3.21", "A.b-c_d"] {
            assert!(validate_name(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_unsafe_names() {
        for n in [
            "", "-x", ".hidden", "_a", "a/b", "..", "a b", "é", "a\0", "x:y", "../etc",
        ] {
            assert!(validate_name(n).is_err(), "{n:?}");
        }
        assert!(validate_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn sanitize_turns_file_names_into_names() {
        assert_eq!(
            sanitize_name("alpine rootfs").as_deref(),
            Some("alpine-rootfs")
        );
        assert_eq!(sanitize_name("..x").as_deref(), Some("x"));
        assert_eq!(sanitize_name("---"), None);
    }
}
