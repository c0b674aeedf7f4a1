//! The one reader of PAM files: where (if anywhere) `pam_authguard.so`
//! stands in `/etc/pam.d/sshd`. `guardctl check` grades the place; the
//! log follower and `guardctl scan` ask only whether the module is there
//! (`[sshd_log] pam_module = "auto"`).

use std::path::Path;

/// Where the authguard line stands in a PAM file.
#[derive(Debug, PartialEq, Eq)]
pub enum PamLine {
    /// Not there.
    Missing,
    /// There, before the password modules, with this control.
    Before { control: String },
    /// There, but after the password modules: too late to refuse first.
    After,
}

/// True when the PAM file names pam_authguard.so on an `auth` line
/// (`[sshd_log] pam_module = "auto"`).
pub fn uses_module(pam_file: &Path) -> bool {
    std::fs::read_to_string(pam_file).is_ok_and(|text| !matches!(locate(&text), PamLine::Missing))
}

pub fn locate(text: &str) -> PamLine {
    let mut seen_password_check = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["@include", "common-auth", ..] => seen_password_check = true,
            [kind, control, module, ..] if kind.trim_start_matches('-') == "auth" => {
                if module.ends_with("pam_authguard.so") {
                    return if seen_password_check {
                        PamLine::After
                    } else {
                        PamLine::Before {
                            control: (*control).to_owned(),
                        }
                    };
                }
                seen_password_check = true;
            }
            _ => {}
        }
    }
    PamLine::Missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_and_its_place() {
        let good = "# sshd\nauth requisite pam_authguard.so\n@include common-auth\n";
        assert_eq!(
            locate(good),
            PamLine::Before {
                control: "requisite".into()
            }
        );
        let late = "@include common-auth\nauth requisite pam_authguard.so\n";
        assert_eq!(locate(late), PamLine::After);
        let commented = "#auth requisite pam_authguard.so\n@include common-auth\n";
        assert_eq!(locate(commented), PamLine::Missing);
        let optional = "auth optional /usr/lib/x86_64-linux-gnu/security/pam_authguard.so config=/x\n@include common-auth\n";
        assert_eq!(
            locate(optional),
            PamLine::Before {
                control: "optional".into()
            }
        );
        let after_unix = "auth required pam_unix.so\nauth requisite pam_authguard.so\n";
        assert_eq!(locate(after_unix), PamLine::After);
    }
}
