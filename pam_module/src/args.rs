//! The module's arguments on its PAM line: `config=PATH`, `fail=open|closed`.

use authguard_core::config::FailMode;
use std::ffi::CStr;
use std::path::PathBuf;

/// Arguments from the PAM line, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleArgs {
    /// `config=PATH`: a config other than `/etc/authguard/authguard.toml`.
    pub config: Option<PathBuf>,
    /// `fail=open|closed`: overrides the config's `fail_mode`, and applies
    /// even when the config itself cannot be read.
    pub fail_mode: Option<FailMode>,
    /// Arguments that were not understood (logged, otherwise ignored).
    pub unknown: Vec<String>,
}

impl ModuleArgs {
    /// Parses PAM's argv.
    pub fn parse(args: &[&CStr]) -> ModuleArgs {
        let mut out = ModuleArgs::default();
        for arg in args {
            let text = arg.to_string_lossy();
            match text.split_once('=') {
                Some(("config", path)) if !path.is_empty() => {
                    out.config = Some(PathBuf::from(path))
                }
                Some(("fail", "open")) => out.fail_mode = Some(FailMode::Open),
                Some(("fail", "closed")) => out.fail_mode = Some(FailMode::Closed),
                _ => out.unknown.push(text.into_owned()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_keeps_unknown() {
        let a = ModuleArgs::parse(&[
            c"config=/tmp/a.toml",
            c"fail=closed",
            c"debug",
            c"fail=ajar",
        ]);
        assert_eq!(a.config, Some(PathBuf::from("/tmp/a.toml")));
        assert_eq!(a.fail_mode, Some(FailMode::Closed));
        assert_eq!(
            a.unknown,
            vec!["debug".to_string(), "fail=ajar".to_string()]
        );
    }
}
