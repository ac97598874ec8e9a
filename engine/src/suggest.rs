//! "Did you mean …?": the defined name closest to a mistyped one.
//!
//! Invariant: a suggestion is only made when a candidate is close — within one edit per
//! three characters (at least one; a swap of two neighbours is one edit) — and, among the
//! close ones, more alike than every other (Jaro-Winkler, which weighs a shared start: a
//! typo usually keeps the start of a name, so `max_retry` means `max_retries`, not
//! `max_ready`, though the latter is fewer edits away). A tie suggests nothing, so a wrong
//! name never gets a misleading hint.

/// The candidate closest to `word`, if it is close enough and the only one that close.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(f64, &str)> = None;
    let mut tied = false;
    for c in candidates {
        let lower = c.to_lowercase();
        if lower == word {
            return None;
        }
        if strsim::osa_distance(&word, &lower) > limit {
            continue;
        }
        let alike = strsim::jaro_winkler(&word, &lower);
        match best {
            Some((b, _)) if alike < b => {}
            Some((b, _)) if alike == b => tied = true,
            _ => {
                best = Some((alike, c));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_swapped_or_missing_letter_is_suggested() {
        assert_eq!(closest("paymnet", ["default", "email", "payment"]), Some("payment"));
        assert_eq!(closest("emial", ["default", "email", "payment"]), Some("email"));
        assert_eq!(closest("max_retry", ["max_retries", "backoff_ms"]), Some("max_retries"));
        // Fewer edits away, but a typo keeps the start of the name.
        assert_eq!(closest("max_retry", ["max_ready", "max_retries"]), Some("max_retries"));
    }

    #[test]
    fn nothing_is_suggested_for_a_distant_or_ambiguous_name() {
        assert_eq!(closest("orders", ["default", "email", "payment"]), None);
        assert_eq!(closest("q1", ["q2", "q3"]), None);
    }
}
