//! `${VAR}` and `${VAR:default}` substitution, applied to the config text before it is
//! parsed. Substitution never changes the number of lines before a value, so problems
//! found later still point at the right line. An unset variable without a default is a
//! problem naming the variable and its line — never a panic.

use super::Problem;

/// Substitutes every `${…}` in `text` with values from `lookup`; `$${` escapes a literal `${`.
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                problems.push(Problem::at("", index + 1, "unterminated '${' (expected '}')"));
                rest = "";
                break;
            };
            let inner = &rest[start + 2..start + len];
            let (name, default) = match inner.split_once(':') {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => problems.push(Problem::at(
                    "",
                    index + 1,
                    format!("environment variable '{name}' is not set and has no default (write ${{{name}:default}})"),
                )),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "10.0.0.1".to_string())
    }

    #[test]
    fn substitutes_set_variables_and_defaults() {
        let out = substitute("a: ${HOST}:1\nb: ${PORT:49134}\n", env).unwrap();
        assert_eq!(out, "a: 10.0.0.1:1\nb: 49134\n");
    }

    #[test]
    fn unset_variable_without_default_names_variable_and_line() {
        let problems = substitute("a: 1\nb: ${NOPE}\nc: ${ALSO_NOPE}\n", env).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.contains("'NOPE'"));
        assert!(problems[1].message.contains("'ALSO_NOPE'"));
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(substitute("a: $${HOST}\n", env).unwrap(), "a: ${HOST}\n");
    }
}
