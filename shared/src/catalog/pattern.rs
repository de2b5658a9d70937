//! The `pattern` of a provider setting, matched against the whole value (as HTML's `pattern`
//! attribute: `^` and `$` are implied and may be written). The syntax is that of `regex-lite`
//! (the small, maintained sibling of the `regex` crate): literals, `.`, classes, `\d \w \s`,
//! groups, alternation, counted repetition, anchors. Matching runs in time linear in the value, so
//! no pattern can make a check run long.

/// Settings are short; a longer value never matches (and is refused before matching).
pub(crate) const MAX_INPUT_CHARS: usize = 1_024;

/// A compiled pattern. Only the catalog loader checks them, so every declared pattern compiles.
#[derive(Debug, Clone)]
pub(crate) struct Pattern(regex_lite::Regex);

impl Pattern {
    /// Parses `text`; the error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        regex_lite::Regex::new(&format!("^(?:{text})$"))
            .map(Pattern)
            .map_err(|error| format!("not a valid pattern: {error}"))
    }

    /// True when the whole of `value` matches.
    pub(crate) fn is_match(&self, value: &str) -> bool {
        value.chars().count() <= MAX_INPUT_CHARS && self.0.is_match(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn matches(pattern: &str, value: &str) -> bool {
        Pattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(value)
    }

    #[test]
    fn the_whole_value_must_match() {
        assert!(matches("[0-9]+", "12345"));
        assert!(!matches("[0-9]+", "123a"));
        assert!(!matches("[0-9]+", ""));
        assert!(matches("^[0-9]+$", "7"));
        assert!(matches("us[0-9]{1,2}", "us21"));
        assert!(!matches("us[0-9]{1,2}", "us211"));
    }

    #[test]
    fn classes_escapes_groups_and_alternation() {
        assert!(matches(r"\+[1-9]\d{1,14}", "+972501234567"));
        assert!(matches(
            "[a-z][a-z0-9-]*(\\.[a-z0-9-]+)*",
            "lb1.wizcloud.co.il"
        ));
        assert!(matches("(?:gpt|o)[0-9a-z.-]*", "gpt-4o-mini"));
        assert!(matches("[^/]+", "abc"));
        assert!(!matches("[^/]+", "a/b"));
        assert!(matches("a|bc", "bc"));
        assert!(matches("[-_a]+", "-_a"));
        assert!(matches(r"\w+@\w+\.\w+", "me@acme.io"));
    }

    #[test]
    fn malformed_patterns_are_rejected_with_a_reason() {
        for bad in ["[a-", "(ab", "ab)", "*a", "a{2,1}", r"\q", "[z-a]"] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn nested_repetition_runs_in_linear_time() {
        let value = format!("{}!", "a".repeat(super::MAX_INPUT_CHARS - 1));
        assert!(!matches("(a+)+b", &value));
        assert!(matches("(a+)+!", &value));
    }
}
