//! "Did you mean …?": the defined name closest to a mistyped one.
//!
//! Invariant: a suggestion is only made when one candidate is clearly close — within
//! one edit per three characters (at least one; a swap of two neighbours is one edit) and
//! closer than every other candidate — so a wrong name never gets a misleading hint.

/// The candidate closest to `word`, if it is close enough and the only one that close.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    let mut tied = false;
    for c in candidates {
        if c == word {
            return None;
        }
        let d = strsim::osa_distance(&word.to_lowercase(), &c.to_lowercase());
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tied = true,
            _ => {
                best = Some((d, c));
                tied = false;
            }
        }
    }
    best.filter(|(d, _)| *d <= limit && !tied).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_swapped_or_missing_letter_is_suggested() {
        assert_eq!(closest("paymnet", ["default", "email", "payment"]), Some("payment"));
        assert_eq!(closest("emial", ["default", "email", "payment"]), Some("email"));
        assert_eq!(closest("max_retry", ["max_retries", "backoff_ms"]), Some("max_retries"));
    }

    #[test]
    fn nothing_is_suggested_for_a_distant_or_ambiguous_name() {
        assert_eq!(closest("orders", ["default", "email", "payment"]), None);
        assert_eq!(closest("q1", ["q2", "q3"]), None);
    }
}
