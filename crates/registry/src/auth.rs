//! `WWW-Authenticate` challenges and bearer tokens.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How a registry wants to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Fetch a token from `realm` (Docker Hub, GHCR, Quay, ...).
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Send credentials with every request (distribution with htpasswd).
    Basic { realm: Option<String> },
}

/// Parse a `WWW-Authenticate` value: `Bearer realm="...",service="...",scope="..."`.
/// Several challenges may be listed; Bearer is preferred over Basic.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let mut found: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        // A new challenge starts with a scheme token not followed by '='.
        let tok_end = rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == '=')
            .unwrap_or(rest.len());
        let token = &rest[..tok_end];
        let after = rest[tok_end..].trim_start();
        if after.starts_with('=') && !found.is_empty() {
            // key=value of the current challenge
            let (value, remaining) = parse_value(after[1..].trim_start());
            if let Some((_, params)) = found.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        } else if !token.is_empty() {
            found.push((token.to_ascii_lowercase(), BTreeMap::new()));
            rest = after.trim_start_matches(',').trim_start();
        } else {
            rest = after.get(1..).unwrap_or("").trim_start();
        }
    }
    let bearer = found
        .iter()
        .find(|(s, p)| s == "bearer" && p.contains_key("realm"));
    if let Some((_, p)) = bearer {
        return Some(Challenge::Bearer {
            realm: p["realm"].clone(),
            service: p.get("service").cloned(),
            scope: p.get("scope").cloned(),
        });
    }
    found
        .iter()
        .find(|(s, _)| s == "basic")
        .map(|(_, p)| Challenge::Basic {
            realm: p.get("realm").cloned(),
        })
}

/// A quoted string (with backslash escapes) or a bare token; returns it and what follows.
fn parse_value(s: &str) -> (String, &str) {
    if let Some(q) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => return (out, &q[i + 1..]),
                c => out.push(c),
            }
        }
        (out, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    }
}

/// The token endpoint's reply: `token` or `access_token` (OAuth2 spelling).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: String,
    expires: Instant,
}

impl TokenReply {
    pub fn into_token(self) -> Option<Token> {
        let value = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        // The distribution spec's default lifetime is 60 s; renew a little early.
        let secs = self.expires_in.unwrap_or(60).max(60);
        Some(Token {
            value,
            expires: Instant::now() + Duration::from_secs(secs.saturating_sub(10)),
        })
    }
}

impl Token {
    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// `application/x-www-form-urlencoded`-safe percent encoding for query values.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer_challenge_parses() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenge(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
    }

    #[test]
    fn basic_and_odd_spellings_parse() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: Some("Registry Realm".into())
            })
        );
        assert_eq!(
            parse_challenge(
                r#"bearer realm=https://r/t, service = "a\"b" ,error="insufficient_scope""#
            ),
            Some(Challenge::Bearer {
                realm: "https://r/t".into(),
                service: Some("a\"b".into()),
                scope: None,
            })
        );
        assert!(matches!(
            parse_challenge(r#"Basic realm="x", Bearer realm="https://t",service="s""#),
            Some(Challenge::Bearer { .. })
        ));
        assert_eq!(parse_challenge(""), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn token_reply_accepts_either_field() {
        let t: TokenReply =
            serde_json::from_str(r#"{"access_token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token().unwrap().value, "abc");
        let t: TokenReply = serde_json::from_str(r#"{"token":"xyz"}"#).unwrap();
        assert!(t.into_token().unwrap().is_fresh());
        let t: TokenReply = serde_json::from_str(r#"{}"#).unwrap();
        assert!(t.into_token().is_none());
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
