//! `AllowedPattern` as CloudFormation reads it: a Java regular expression. Shared by pipeline
//! templates (meridian-pipeline) and stack templates (meridian-template).

/// Java reads a `-` next to a class shorthand inside brackets (`[\w-\+]`) as a literal dash;
/// the regex crate refuses it as a range: it is escaped.
fn java_class_dashes(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut depth = 0usize;
    let mut i = 0;
    let mut after_shorthand = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            out.push(c);
            out.push(n);
            after_shorthand = depth > 0 && "wWdDsS".contains(n);
            i += 2;
            continue;
        }
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            '-' if depth > 0 => {
                let next_shorthand =
                    chars.get(i + 1) == Some(&'\\') && chars.get(i + 2).is_some_and(|n| "wWdDsS".contains(*n));
                if after_shorthand || next_shorthand {
                    out.push_str("\\-");
                    after_shorthand = false;
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        after_shorthand = false;
        out.push(c);
        i += 1;
    }
    out
}

/// An AllowedPattern as CloudFormation reads it: a Java regular expression that must match the
/// whole value. Look-around and back-references work (fancy-regex); Java's POSIX classes
/// (`\p{Alnum}`, ...) are read as Java reads them (ASCII); backtracking is bounded, so a
/// pathological pattern fails instead of hanging.
pub fn java_regex(pattern: &str) -> Result<fancy_regex::Regex, String> {
    const POSIX: &[(&str, &str)] = &[
        ("Lower", "a-z"),
        ("Upper", "A-Z"),
        ("ASCII", "\\x00-\\x7F"),
        ("Alpha", "a-zA-Z"),
        ("Digit", "0-9"),
        ("Alnum", "a-zA-Z0-9"),
        ("Punct", "!-/:-@\\[-`{-~"),
        ("Graph", "!-~"),
        ("Print", " -~"),
        ("Blank", " \\t"),
        ("Cntrl", "\\x00-\\x1F\\x7F"),
        ("XDigit", "0-9a-fA-F"),
        ("Space", " \\t\\n\\x0B\\f\\r"),
    ];
    let mut p = java_class_dashes(pattern);
    for (name, class) in POSIX {
        p = p.replace(&format!("\\p{{{name}}}"), &format!("[{class}]"));
        p = p.replace(&format!("\\P{{{name}}}"), &format!("[^{class}]"));
    }
    fancy_regex::RegexBuilder::new(&format!("^(?:{p})$"))
        .backtrack_limit(100_000)
        .build()
        .map_err(|e| e.to_string())
}
