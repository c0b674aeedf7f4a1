//! `authguard.toml(5)`, generated from the commented default config the
//! package installs (`packaging/authguard.toml`), so the page documents
//! exactly the keys, defaults and explanations of that file.

const CONFIG: &str = include_str!("../../packaging/authguard.toml");
const HEAD: &str = include_str!("authguard.toml.5.head");
const TAIL: &str = include_str!("authguard.toml.5.tail");

/// The whole page.
pub fn render() -> String {
    let mut page = HEAD.replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    let mut comment: Vec<&str> = Vec::new();
    // The file's own header (up to the first blank line) is not about a key.
    let body = CONFIG.split_once("\n\n").map_or(CONFIG, |(_, rest)| rest);
    for line in body.lines() {
        if line.starts_with('[') && line.ends_with(']') {
            page.push_str(&format!(".SH \"{}\"\n", escape(line)));
            comment.clear();
        } else if let Some(key) = line.strip_prefix('#').filter(|k| !k.starts_with(' ')) {
            page.push_str(&format!(".TP\n.B {}\n", escape(key)));
            if !comment.is_empty() {
                page.push_str(&escape(&comment.join(" ")));
                page.push('\n');
            }
            comment.clear();
        } else if let Some(text) = line.strip_prefix("# ") {
            comment.push(text);
        }
    }
    page.push_str(TAIL);
    page
}

/// Text as roff reads it: backslashes, quotes and hyphens taken literally,
/// and no line starting with a control character.
fn escape(text: &str) -> String {
    let s = text
        .replace('\\', "\\e")
        .replace('"', "\\(dq")
        .replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_of_the_shipped_config_is_on_the_page() {
        let page = super::render();
        for line in super::CONFIG.lines() {
            if let Some(key) = line
                .strip_prefix('#')
                .filter(|k| !k.starts_with(' ') && k.contains('='))
            {
                let name = key.split('=').next().unwrap_or_default().trim();
                assert!(page.contains(&format!(".B {name}")), "{name} missing");
            }
        }
        assert!(page.contains(".SH \"[firewall]\""));
        assert!(
            page.contains(".B fail_mode = \\(dqopen\\(dq"),
            "quotes survive roff"
        );
    }
}
