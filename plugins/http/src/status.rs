//! Sets of acceptable HTTP status codes: `200`, `"200-299"`, `"2xx"`, `"200,204,300-399"`, lists.

use std::fmt;

use serde::Deserialize;

/// The `expected_status` config value as written: a number, a spec string, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ExpectedStatus {
    /// One exact code.
    Code(u16),
    /// A spec: codes, ranges `200-299` and classes `2xx`, separated by commas.
    Spec(String),
    /// A list of codes and specs.
    List(Vec<ExpectedItem>),
}

/// One element of an `expected_status` list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ExpectedItem {
    /// One exact code.
    Code(u16),
    /// A spec string.
    Spec(String),
}

/// A parsed set of status codes, as inclusive ranges in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
}

impl StatusSet {
    /// The default: `200-399` (success and redirects that were not followed).
    pub fn default_set() -> Self {
        StatusSet {
            ranges: vec![(200, 399)],
        }
    }

    /// Parses the config value.
    pub fn from_config(value: &ExpectedStatus) -> Result<Self, String> {
        let mut ranges = Vec::new();
        match value {
            ExpectedStatus::Code(c) => ranges.push(code_range(*c)?),
            ExpectedStatus::Spec(s) => parse_spec(s, &mut ranges)?,
            ExpectedStatus::List(items) => {
                if items.is_empty() {
                    return Err("the list of expected statuses is empty".into());
                }
                for item in items {
                    match item {
                        ExpectedItem::Code(c) => ranges.push(code_range(*c)?),
                        ExpectedItem::Spec(s) => parse_spec(s, &mut ranges)?,
                    }
                }
            }
        }
        Ok(StatusSet { ranges })
    }

    /// True when `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl fmt::Display for StatusSet {
    /// `200-299`, `200, 204` …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if lo == hi {
                write!(f, "{lo}")?
            } else {
                write!(f, "{lo}-{hi}")?
            }
        }
        Ok(())
    }
}

fn code_range(code: u16) -> Result<(u16, u16), String> {
    if (100..=599).contains(&code) {
        Ok((code, code))
    } else {
        Err(format!("{code} is not an HTTP status code (100-599)"))
    }
}

fn parse_code(s: &str) -> Result<u16, String> {
    let code: u16 = s
        .parse()
        .map_err(|_| format!("`{s}` is not an HTTP status code"))?;
    code_range(code).map(|(c, _)| c)
}

fn parse_spec(spec: &str, out: &mut Vec<(u16, u16)>) -> Result<(), String> {
    let mut any = false;
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        any = true;
        let lower = part.to_ascii_lowercase();
        if let Some(class) = lower.strip_suffix("xx") {
            let digit: u16 = class
                .parse()
                .map_err(|_| format!("`{part}` is not a status class like 2xx"))?;
            if !(1..=5).contains(&digit) {
                return Err(format!("`{part}` is not a status class like 2xx"));
            }
            out.push((digit * 100, digit * 100 + 99));
        } else if let Some((lo, hi)) = part.split_once('-') {
            let (lo, hi) = (parse_code(lo.trim())?, parse_code(hi.trim())?);
            if lo > hi {
                return Err(format!("range `{part}` is reversed"));
            }
            out.push((lo, hi));
        } else {
            out.push(code_range(parse_code(part)?)?);
        }
    }
    if any {
        Ok(())
    } else {
        Err(format!("`{spec}` names no status code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> Result<StatusSet, String> {
        StatusSet::from_config(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn parses_codes_ranges_classes_and_lists() {
        let s = set("200").unwrap();
        assert!(s.contains(200) && !s.contains(201));
        assert_eq!(s.to_string(), "200");

        let s = set(r#""200-299""#).unwrap();
        assert!(s.contains(200) && s.contains(299) && !s.contains(300) && !s.contains(199));
        assert_eq!(s.to_string(), "200-299");

        let s = set(r#"" 2xx , 304,401 - 403""#).unwrap();
        assert!(s.contains(250) && s.contains(304) && s.contains(402) && !s.contains(404));
        assert_eq!(s.to_string(), "200-299, 304, 401-403");

        let s = set(r#"[200, "3XX", "418"]"#).unwrap();
        assert!(s.contains(200) && s.contains(399) && s.contains(418) && !s.contains(201));

        let d = StatusSet::default_set();
        assert!(d.contains(200) && d.contains(301) && d.contains(399) && !d.contains(400));
        assert_eq!(d.to_string(), "200-399");
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "99",
            "600",
            r#""abc""#,
            r#""300-200""#,
            r#""6xx""#,
            r#""""#,
            r#"" , ""#,
            "[]",
            r#""200-""#,
        ] {
            assert!(set(bad).is_err(), "{bad} should be rejected");
        }
        assert!(set(r#""20x""#).unwrap_err().contains("20x"));
    }
}
