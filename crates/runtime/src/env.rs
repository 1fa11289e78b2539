//! The guest environment (spec: "Guest environment"). Nothing of the host environment is
//! carried in except `TERM` and `COLORTERM`.

/// Baseline `PATH` of every guest (the spec's DEFAULT_PATH_ENV).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables the image's `Env` may not set: display, audio and GPU variables always come from
/// host detection (spec: "display and GPU vars are blocked here").
const BLOCKED_FROM_IMAGE: &[&str] = &[
    "DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
    "WAYLAND_DISPLAY",
    "XDG_SESSION_TYPE",
    "XDG_CURRENT_DESKTOP",
    "DESKTOP_SESSION",
    "PULSE_SERVER",
    "DBUS_SESSION_BUS_ADDRESS",
    "__NV_PRIME_RENDER_OFFLOAD",
    "__GLX_VENDOR_LIBRARY_NAME",
    "GALLIUM_DRIVER",
    "MESA_D3D12_DEFAULT_DEVICE_TYPE",
    "LIBGL_ALWAYS_SOFTWARE",
];

/// Inputs of [`build_env`]; host values are passed in so the function stays pure.
#[derive(Debug, Clone, Default)]
pub struct EnvInputs<'a> {
    pub image_env: &'a [String],
    pub user_env: &'a [(String, String)],
    pub home: &'a str,
    pub user_name: &'a str,
    pub hostname: &'a str,
    /// Host `TERM` (unset: `xterm-256color`).
    pub host_term: Option<&'a str>,
    /// Host `COLORTERM` (passed on only when set).
    pub host_colorterm: Option<&'a str>,
    pub minimal: bool,
}

/// An ordered environment where a later `set` replaces the value but keeps the first position.
#[derive(Debug, Default)]
struct OrderedEnv(Vec<(String, String)>);

impl OrderedEnv {
    fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }
}

/// Build the guest environment, later steps winning (spec precedence list):
///
/// 1. baseline `PATH`, `MOZ_FAKE_NO_SANDBOX=1`;
/// 2. the image `Env` (display/GPU variables dropped);
/// 3. `--env`;
/// 4. `HOME`, `USER`, `LOGNAME` of the resolved user, then `TERM`, `COLORTERM`, `HOSTNAME`.
///
/// The spec's table of auto-set variables says `HOSTNAME` "can be overridden with --env", and a
/// user who passes `--env TERM=...` means it, so `--env` wins for `TERM`, `COLORTERM` and
/// `HOSTNAME`; the identity variables always follow the user the session runs as.
///
/// `--minimal`: only `--env` plus `TERM`/`COLORTERM` as the spec says, and also the baseline
/// `PATH` (unless `--env` sets one) so that commands are found at all.
pub fn build_env(inp: &EnvInputs<'_>) -> Vec<(String, String)> {
    let mut env = OrderedEnv::default();
    let term = inp
        .host_term
        .filter(|t| !t.is_empty())
        .unwrap_or("xterm-256color");
    let user_sets = |key: &str| inp.user_env.iter().any(|(k, _)| k == key);
    env.set("PATH", DEFAULT_PATH);
    if inp.minimal {
        for (k, v) in inp.user_env {
            env.set(k, v);
        }
    } else {
        env.set("MOZ_FAKE_NO_SANDBOX", "1");
        for entry in inp.image_env {
            let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
            if k.is_empty() || BLOCKED_FROM_IMAGE.contains(&k) {
                continue;
            }
            env.set(k, v);
        }
        for (k, v) in inp.user_env {
            env.set(k, v);
        }
        env.set("HOME", inp.home);
        env.set("USER", inp.user_name);
        env.set("LOGNAME", inp.user_name);
        if !user_sets("HOSTNAME") {
            env.set("HOSTNAME", inp.hostname);
        }
    }
    if !user_sets("TERM") {
        env.set("TERM", term);
    }
    if let Some(ct) = inp.host_colorterm.filter(|c| !c.is_empty()) {
        if !user_sets("COLORTERM") {
            env.set("COLORTERM", ct);
        }
    }
    env.0
}

/// The value of `key` in an environment built by [`build_env`].
pub fn lookup<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(image: &'a [String], user: &'a [(String, String)]) -> EnvInputs<'a> {
        EnvInputs {
            image_env: image,
            user_env: user,
            home: "/home/alice",
            user_name: "alice",
            hostname: "box",
            host_term: Some("screen"),
            host_colorterm: None,
            minimal: false,
        }
    }

    #[test]
    fn baseline_then_image_then_user_then_identity() {
        let image = vec!["PATH=/opt/bin:/bin".to_string(), "FOO=image".to_string()];
        let user = vec![("FOO".to_string(), "cli".to_string())];
        let env = build_env(&inputs(&image, &user));
        assert_eq!(lookup(&env, "PATH"), Some("/opt/bin:/bin"));
        assert_eq!(lookup(&env, "FOO"), Some("cli"));
        assert_eq!(lookup(&env, "MOZ_FAKE_NO_SANDBOX"), Some("1"));
        assert_eq!(lookup(&env, "HOME"), Some("/home/alice"));
        assert_eq!(lookup(&env, "USER"), Some("alice"));
        assert_eq!(lookup(&env, "LOGNAME"), Some("alice"));
        assert_eq!(lookup(&env, "TERM"), Some("screen"));
        assert_eq!(lookup(&env, "HOSTNAME"), Some("box"));
        assert_eq!(lookup(&env, "COLORTERM"), None);
    }

    #[test]
    fn identity_beats_image_and_cli() {
        let image = vec!["HOME=/nowhere".to_string()];
        let user = vec![("USER".to_string(), "mallory".to_string())];
        let env = build_env(&inputs(&image, &user));
        assert_eq!(lookup(&env, "HOME"), Some("/home/alice"));
        assert_eq!(lookup(&env, "USER"), Some("alice"));
    }

    #[test]
    fn cli_overrides_term_and_hostname() {
        let user = vec![
            ("TERM".to_string(), "dumb".to_string()),
            ("HOSTNAME".to_string(), "h".to_string()),
        ];
        let env = build_env(&inputs(&[], &user));
        assert_eq!(lookup(&env, "TERM"), Some("dumb"));
        assert_eq!(lookup(&env, "HOSTNAME"), Some("h"));
    }

    #[test]
    fn image_cannot_set_display_variables() {
        let image = vec!["DISPLAY=:9".to_string(), "OK=1".to_string()];
        let env = build_env(&inputs(&image, &[]));
        assert_eq!(lookup(&env, "DISPLAY"), None);
        assert_eq!(lookup(&env, "OK"), Some("1"));
    }

    #[test]
    fn term_defaults_and_colorterm_passes_through() {
        let mut inp = inputs(&[], &[]);
        inp.host_term = None;
        inp.host_colorterm = Some("truecolor");
        let env = build_env(&inp);
        assert_eq!(lookup(&env, "TERM"), Some("xterm-256color"));
        assert_eq!(lookup(&env, "COLORTERM"), Some("truecolor"));
    }

    #[test]
    fn minimal_keeps_only_cli_env_term_and_path() {
        let image = vec!["FOO=image".to_string()];
        let user = vec![("BAR".to_string(), "1".to_string())];
        let mut inp = inputs(&image, &user);
        inp.minimal = true;
        let env = build_env(&inp);
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["PATH", "BAR", "TERM"]);
    }
}
