//! Globs over queue names and function ids: `*` matches any run of characters (`::`
//! included), `?` exactly one; everything else matches itself. A glob matches the whole
//! name, never a part of it.

/// Whether `name` matches `glob`.
pub fn matches(glob: &str, name: &str) -> bool {
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    let (mut gi, mut ni) = (0, 0);
    // Where the last `*` was and how much of `name` it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ni));
                gi += 1;
            }
            Some('?') => {
                gi += 1;
                ni += 1;
            }
            Some(c) if *c == n[ni] => {
                gi += 1;
                ni += 1;
            }
            _ => match star {
                Some((s, taken)) => {
                    gi = s + 1;
                    ni = taken + 1;
                    star = Some((s, taken + 1));
                }
                None => return false,
            },
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// Whether any of `globs` matches; `None` (no list) matches everything.
pub fn any(globs: Option<&[String]>, name: &str) -> bool {
    globs.is_none_or(|globs| globs.iter().any(|g| matches(g, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_questions_and_whole_names() {
        assert!(matches("orders::*", "orders::process-payment"));
        assert!(!matches("orders::*", "emails::send"));
        assert!(!matches("orders", "orders-eu"));
        assert!(matches("orders*", "orders-eu"));
        assert!(matches("*", ""));
        assert!(matches("*-eu", "orders-eu"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("q?", "q1"));
        assert!(!matches("q?", "q"));
        assert!(!matches("", "a"));
    }

    #[test]
    fn no_list_allows_all() {
        assert!(any(None, "anything"));
        assert!(!any(Some(&["orders*".to_string()]), "payments"));
    }
}
