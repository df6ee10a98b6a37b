//! Prometheus-style label matchers (`=`, `!=`, `=~`, `!~`) and the small
//! expression language of policy conditions: `metric{label="v"} > 85`.
//!
//! Parsing only; no evaluation state lives here.

use regex::Regex;

use crate::model::Labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher. Regexes are fully anchored, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Matcher) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?} for label {name:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// A missing label matches as the empty string (Prometheus semantics).
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            _ => false,
        }
    }

    /// Parses a single matcher such as `mountpoint!~"/boot.*"`.
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let mut p = Parser::new(s);
        let m = p.matcher()?;
        p.skip_ws();
        if !p.at_end() {
            return Err(p.error("end of matcher"));
        }
        Ok(m)
    }

    pub fn op_str(&self) -> &'static str {
        match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op_str(), self.value)
    }
}

/// True when every matcher matches.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Comparison operators of conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn parse(s: &str) -> Option<CmpOp> {
        Some(match s {
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            _ => return None,
        })
    }

    #[inline]
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

/// A parsed comparison: `metric{matchers} op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub metric: String,
    pub matchers: Vec<Matcher>,
    pub op: CmpOp,
    pub value: f64,
}

impl Comparison {
    pub fn parse(s: &str) -> Result<Comparison, String> {
        let mut p = Parser::new(s);
        p.skip_ws();
        let metric = p.ident(true)?;
        p.skip_ws();
        let matchers = if p.peek() == Some('{') {
            p.selector()?
        } else {
            Vec::new()
        };
        p.skip_ws();
        let op = p.cmp_op()?;
        p.skip_ws();
        let value = p.number()?;
        p.skip_ws();
        if !p.at_end() {
            return Err(p.error("end of condition"));
        }
        Ok(Comparison {
            metric,
            matchers,
            op,
            value,
        })
    }
}

/// Parses `{a="b", c=~"d"}` (braces optional) into matchers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    let owned;
    let src = if t.starts_with('{') {
        t
    } else {
        owned = format!("{{{t}}}");
        &owned
    };
    let mut p = Parser::new(src);
    let m = p.selector()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error("end of selector"));
    }
    Ok(m)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn error(&self, expected: &str) -> String {
        let found = match self.peek() {
            Some(c) => format!("{c:?}"),
            None => "the end".into(),
        };
        format!(
            "in {:?} at column {}: expected {expected}, found {found}",
            self.src,
            self.pos + 1
        )
    }

    fn ident(&mut self, metric: bool) -> Result<String, String> {
        let start = self.pos;
        for (i, c) in self.rest().char_indices() {
            let ok = c == '_'
                || c.is_ascii_alphabetic()
                || (i > 0 && c.is_ascii_digit())
                || (metric && c == ':');
            if !ok {
                break;
            }
            self.pos = start + i + c.len_utf8();
        }
        if self.pos == start {
            return Err(self.error(if metric {
                "a metric name"
            } else {
                "a label name"
            }));
        }
        Ok(self.src[start..self.pos].to_string())
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, String> {
        if self.peek() != Some('{') {
            return Err(self.error("'{'"));
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(out);
            }
            out.push(self.matcher()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => return Err(self.error("',' or '}'")),
            }
        }
    }

    fn matcher(&mut self) -> Result<Matcher, String> {
        self.skip_ws();
        let name = self.ident(false)?;
        self.skip_ws();
        let r = self.rest();
        let op = if r.starts_with("=~") {
            MatchOp::Regex
        } else if r.starts_with("!~") {
            MatchOp::NotRegex
        } else if r.starts_with("!=") {
            MatchOp::NotEqual
        } else if r.starts_with('=') {
            MatchOp::Equal
        } else {
            return Err(self.error("one of = != =~ !~"));
        };
        self.pos += if op == MatchOp::Equal { 1 } else { 2 };
        self.skip_ws();
        let value = self.quoted()?;
        Matcher::new(&name, op, &value)
    }

    fn quoted(&mut self) -> Result<String, String> {
        let q = match self.peek() {
            Some(c @ ('"' | '\'')) => c,
            _ => return Err(self.error("a quoted value")),
        };
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            if c == q {
                self.pos += i + 1;
                return Ok(out);
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e)) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        self.pos = self.src.len();
        Err(self.error("a closing quote"))
    }

    fn cmp_op(&mut self) -> Result<CmpOp, String> {
        for s in [">=", "<=", "==", "!=", ">", "<"] {
            if self.rest().starts_with(s) {
                self.pos += s.len();
                return CmpOp::parse(s).ok_or_else(|| self.error("an operator"));
            }
        }
        Err(self.error("one of > >= < <= == !="))
    }

    fn number(&mut self) -> Result<f64, String> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')))
            .unwrap_or(self.rest().len());
        let text = &self.src[start..start + len];
        let v: f64 = text
            .replace('_', "")
            .parse()
            .map_err(|_| self.error("a number"))?;
        if !v.is_finite() {
            return Err(self.error("a finite number"));
        }
        self.pos += len;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_follow_prometheus() {
        let l = labels(&[("mountpoint", "/boot/efi"), ("host", "web-01")]);
        assert!(Matcher::parse(r#"host="web-01""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"host!="web-02""#).unwrap().matches(&l));
        assert!(
            Matcher::parse(r#"mountpoint=~"/boot.*""#)
                .unwrap()
                .matches(&l)
        );
        // anchored: a partial match is no match
        assert!(!Matcher::parse(r#"mountpoint=~"boot""#).unwrap().matches(&l));
        assert!(
            !Matcher::parse(r#"mountpoint!~"/boot.*""#)
                .unwrap()
                .matches(&l)
        );
        // a missing label is the empty string
        assert!(Matcher::parse(r#"service="""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"x=~"(""#).is_err());
    }

    #[test]
    fn comparisons_parse_with_selectors() {
        let c =
            Comparison::parse(r#"disk_used_percent{mountpoint!~"/boot.*", fstype="ext4"} > 85"#)
                .unwrap();
        assert_eq!(c.metric, "disk_used_percent");
        assert_eq!(c.matchers.len(), 2);
        assert_eq!(c.op, CmpOp::Gt);
        assert_eq!(c.value, 85.0);
        let c = Comparison::parse("log_file_bytes > 1073741824").unwrap();
        assert_eq!(c.value, 1073741824.0);
        let c = Comparison::parse("service_up == 0").unwrap();
        assert_eq!(c.op, CmpOp::Eq);
        let e = Comparison::parse("service_up = 0").unwrap_err();
        assert!(e.contains("one of > >= < <= == !="), "{e}");
        let e = Comparison::parse("x > lots").unwrap_err();
        assert!(e.contains("a number"), "{e}");
        assert!(Comparison::parse("x > 1 extra").is_err());
        assert!(Comparison::parse("x > NaN").is_err());
    }

    #[test]
    fn selectors() {
        let m = parse_selector(r#"role="db", env=~"prod|staging""#).unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_selector("").unwrap().is_empty());
        assert!(parse_selector(r#"{a="b""#).is_err());
    }
}
