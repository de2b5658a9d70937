//! The `pattern` of a provider setting: a small regular-expression language, matched against the
//! whole value (as HTML's `pattern` attribute: `^` and `$` are implied and may be written).
//!
//! Supported: literals, `.`, classes `[a-z0-9_-]` and `[^…]`, escapes `\d \D \w \W \s \S` and
//! `\` before any punctuation, groups `( )` / `(?: )`, alternation `|`, quantifiers `* + ?
//! {n} {n,} {n,m}`, anchors `^ $`. Matching backtracks within a fixed step budget, so a pattern
//! cannot make a check run long: a value that needs more steps does not match.
//!
//! The hub-shared crate has no regex dependency; setting patterns are short and need no more.

const STEP_BUDGET: u32 = 100_000;
const MAX_REPEAT: u32 = 1_000;
/// Matching recurses once per character: longer values never match (settings are short).
pub(crate) const MAX_INPUT_CHARS: usize = 1_024;

/// A parsed pattern. Only the catalog loader creates them, so every stored pattern is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    alternatives: Alternatives,
}

type Sequence = Vec<Node>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternatives(Vec<Sequence>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Char(char),
    Any,
    Class {
        items: Vec<ClassItem>,
        negated: bool,
    },
    Start,
    End,
    Group(Alternatives),
    Repeat(Box<Node>, u32, Option<u32>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

impl ClassItem {
    fn matches(&self, c: char) -> bool {
        match *self {
            ClassItem::Range(lo, hi) => (lo..=hi).contains(&c),
            ClassItem::Digit(positive) => c.is_ascii_digit() == positive,
            ClassItem::Word(positive) => (c.is_ascii_alphanumeric() || c == '_') == positive,
            ClassItem::Space(positive) => c.is_whitespace() == positive,
        }
    }
}

impl Pattern {
    /// Parses `text`; the error says what is wrong and where.
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut parser = Parser { chars, pos: 0 };
        let alternatives = parser.alternatives()?;
        if parser.pos < parser.chars.len() {
            return Err(format!("unmatched `)` at character {}", parser.pos + 1));
        }
        Ok(Pattern { alternatives })
    }

    /// True when the whole of `value` matches.
    pub(crate) fn is_match(&self, value: &str) -> bool {
        let input: Vec<char> = value.chars().collect();
        if input.len() > MAX_INPUT_CHARS {
            return false;
        }
        let matcher = Matcher {
            input: &input,
            steps: std::cell::Cell::new(0),
        };
        matcher.alternatives(&self.alternatives, 0, &mut |end| end == input.len())
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn alternatives(&mut self) -> Result<Alternatives, String> {
        let mut alternatives = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alternatives.push(self.sequence()?);
        }
        Ok(Alternatives(alternatives))
    }

    fn sequence(&mut self) -> Result<Sequence, String> {
        let mut nodes = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            nodes.push(self.quantified(atom)?);
        }
        Ok(nodes)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let at = self.pos + 1;
        match self.next() {
            Some('(') => {
                if self.chars[self.pos..].starts_with(&['?', ':']) {
                    self.pos += 2;
                }
                let inner = self.alternatives()?;
                if self.next() != Some(')') {
                    return Err(format!("unclosed `(` at character {at}"));
                }
                Ok(Node::Group(inner))
            }
            Some('[') => self.class(at),
            Some('.') => Ok(Node::Any),
            Some('^') => Ok(Node::Start),
            Some('$') => Ok(Node::End),
            Some('\\') => match self.escape(at)? {
                ClassItem::Range(c, _) => Ok(Node::Char(c)),
                item => Ok(Node::Class {
                    items: vec![item],
                    negated: false,
                }),
            },
            Some(c @ ('*' | '+' | '?' | '{')) => Err(format!(
                "`{c}` at character {at} has nothing to repeat (write `\\{c}` for the character)"
            )),
            Some(c) => Ok(Node::Char(c)),
            None => Err("unexpected end of pattern".to_owned()),
        }
    }

    /// After a `\`: a class shorthand or an escaped punctuation character (as `Range(c, c)`).
    fn escape(&mut self, at: usize) -> Result<ClassItem, String> {
        match self.next() {
            Some('d') => Ok(ClassItem::Digit(true)),
            Some('D') => Ok(ClassItem::Digit(false)),
            Some('w') => Ok(ClassItem::Word(true)),
            Some('W') => Ok(ClassItem::Word(false)),
            Some('s') => Ok(ClassItem::Space(true)),
            Some('S') => Ok(ClassItem::Space(false)),
            Some(c) if c.is_ascii_punctuation() => Ok(ClassItem::Range(c, c)),
            Some(c) => Err(format!("unsupported escape `\\{c}` at character {at}")),
            None => Err("the pattern ends with `\\`".to_owned()),
        }
    }

    fn class(&mut self, at: usize) -> Result<Node, String> {
        let negated = self.peek() == Some('^');
        self.pos += usize::from(negated);
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = self
                .next()
                .ok_or_else(|| format!("unclosed `[` at character {at}"))?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let item_at = self.pos;
            let start = if c == '\\' {
                match self.escape(item_at)? {
                    ClassItem::Range(c, _) => c,
                    shorthand => {
                        items.push(shorthand);
                        continue;
                    }
                }
            } else {
                c
            };
            let is_range =
                self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|n| *n != ']');
            if !is_range {
                items.push(ClassItem::Range(start, start));
                continue;
            }
            self.pos += 1;
            let end = match self.next() {
                Some('\\') => match self.escape(self.pos)? {
                    ClassItem::Range(c, _) => c,
                    _ => {
                        return Err(format!(
                            "a class shorthand cannot end a range (`[` at character {at})"
                        ))
                    }
                },
                Some(c) => c,
                None => return Err(format!("unclosed `[` at character {at}")),
            };
            if end < start {
                return Err(format!("range `{start}-{end}` is reversed"));
            }
            items.push(ClassItem::Range(start, end));
        }
        Ok(Node::Class { items, negated })
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => return self.counted(atom),
            _ => return Ok(atom),
        };
        self.pos += 1;
        if matches!(atom, Node::Start | Node::End) {
            return Err("an anchor cannot be repeated".to_owned());
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    fn counted(&mut self, atom: Node) -> Result<Node, String> {
        let at = self.pos + 1;
        self.pos += 1;
        let read_number = |parser: &mut Parser| -> Option<u32> {
            let start = parser.pos;
            while parser.peek().is_some_and(|c| c.is_ascii_digit()) {
                parser.pos += 1;
            }
            parser.chars[start..parser.pos]
                .iter()
                .collect::<String>()
                .parse()
                .ok()
        };
        let bad = || format!("`{{` at character {at} must be {{n}}, {{n,}} or {{n,m}}");
        let min = read_number(self).ok_or_else(bad)?;
        let max = match self.next() {
            Some('}') => Some(min),
            Some(',') => {
                let max = read_number(self);
                if self.next() != Some('}') {
                    return Err(bad());
                }
                max
            }
            _ => return Err(bad()),
        };
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
            return Err(format!(
                "`{{` at character {at}: counts are 0-{MAX_REPEAT} and min ≤ max"
            ));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }
}

struct Matcher<'a> {
    input: &'a [char],
    steps: std::cell::Cell<u32>,
}

type Continuation<'k> = dyn FnMut(usize) -> bool + 'k;

impl Matcher<'_> {
    /// Counts one step; false once the budget is spent (the match then fails).
    fn tick(&self) -> bool {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        steps <= STEP_BUDGET
    }

    fn alternatives(&self, alt: &Alternatives, pos: usize, k: &mut Continuation<'_>) -> bool {
        alt.0.iter().any(|seq| self.sequence(seq, pos, k))
    }

    fn sequence(&self, nodes: &[Node], pos: usize, k: &mut Continuation<'_>) -> bool {
        if !self.tick() {
            return false;
        }
        match nodes.split_first() {
            None => k(pos),
            Some((first, rest)) => self.node(first, pos, &mut |p| self.sequence(rest, p, k)),
        }
    }

    fn node(&self, node: &Node, pos: usize, k: &mut Continuation<'_>) -> bool {
        let current = self.input.get(pos).copied();
        match node {
            Node::Char(c) => current == Some(*c) && k(pos + 1),
            Node::Any => current.is_some() && k(pos + 1),
            Node::Class { items, negated } => {
                current.is_some_and(|c| items.iter().any(|i| i.matches(c)) != *negated)
                    && k(pos + 1)
            }
            Node::Start => pos == 0 && k(pos),
            Node::End => pos == self.input.len() && k(pos),
            Node::Group(alt) => self.alternatives(alt, pos, k),
            Node::Repeat(inner, min, max) => self.repeat(inner, *min, *max, 0, pos, k),
        }
    }

    /// Greedy: one more repetition first, then stop if `min` is reached.
    fn repeat(
        &self,
        inner: &Node,
        min: u32,
        max: Option<u32>,
        count: u32,
        pos: usize,
        k: &mut Continuation<'_>,
    ) -> bool {
        if !self.tick() {
            return false;
        }
        if max.is_none_or(|m| count < m) {
            let more = self.node(inner, pos, &mut |p| {
                if p == pos {
                    // An empty repetition makes no progress: count it once and stop.
                    count + 1 >= min && k(p)
                } else {
                    self.repeat(inner, min, max, count + 1, p, k)
                }
            });
            if more {
                return true;
            }
        }
        count >= min && k(pos)
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
        for bad in ["[a-", "(ab", "ab)", "*a", "a{2,1}", "a{x}", r"\q", "[z-a]"] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn catastrophic_backtracking_stops_at_the_step_budget() {
        let value = format!("{}!", "a".repeat(super::MAX_INPUT_CHARS - 1));
        assert!(!matches("(a+)+b", &value));
        assert!(matches("(a+)+!", &value));
    }
}
