//! Body, JSONPath and header assertions, compiled once and evaluated against a response.

use regex_lite::Regex;
use serde::Deserialize;
use serde_json::Value;
use serde_json_path::JsonPath;

/// A JSONPath comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// A selected node equals `value`.
    Eq,
    /// No selected node equals `value`.
    Ne,
    /// A selected node is less than `value` (numbers, or strings lexically).
    Lt,
    /// A selected node is less than or equal to `value`.
    Le,
    /// A selected node is greater than `value`.
    Gt,
    /// A selected node is greater than or equal to `value`.
    Ge,
    /// A selected string contains `value`, array has an element equal to it, or object has it as key.
    Contains,
    /// The path selects at least one node.
    Exists,
    /// The path selects nothing.
    NotExists,
    /// A selected string (or number/boolean as text) matches the regex `value`.
    Matches,
}

impl Operator {
    /// Every operator's config name.
    pub const NAMES: [&'static str; 10] = [
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "contains",
        "exists",
        "not_exists",
        "matches",
    ];

    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Ne => "ne",
            Operator::Lt => "lt",
            Operator::Le => "le",
            Operator::Gt => "gt",
            Operator::Ge => "ge",
            Operator::Contains => "contains",
            Operator::Exists => "exists",
            Operator::NotExists => "not_exists",
            Operator::Matches => "matches",
        }
    }

    /// True for operators that compare against `value`.
    pub fn needs_value(self) -> bool {
        !matches!(self, Operator::Exists | Operator::NotExists)
    }
}

/// One JSONPath assertion as configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonAssertion {
    /// RFC 9535 JSONPath, e.g. `$.status`.
    pub path: String,
    /// How selected nodes are compared with `value`.
    pub operator: Operator,
    /// The value to compare with (a regex string for `matches`).
    #[serde(default)]
    pub value: Option<Value>,
}

/// One header assertion as configured: present, equal to `value`, or matching `regex`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderAssertion {
    /// Header name, case-insensitive.
    pub name: String,
    /// Exact expected value.
    #[serde(default)]
    pub value: Option<String>,
    /// Regex the value must match.
    #[serde(default)]
    pub regex: Option<String>,
}

/// All assertions of a config, compiled.
#[derive(Debug, Clone, Default)]
pub struct Assertions {
    contains: Vec<String>,
    not_contains: Vec<String>,
    body_regex: Vec<Regex>,
    json: Vec<CompiledJson>,
    headers: Vec<CompiledHeader>,
}

#[derive(Debug, Clone)]
struct CompiledJson {
    source: String,
    path: JsonPath,
    operator: Operator,
    value: Value,
    regex: Option<Regex>,
}

#[derive(Debug, Clone)]
enum HeaderCheck {
    Present,
    Equals(String),
    Matches(Regex),
}

#[derive(Debug, Clone)]
struct CompiledHeader {
    name: String,
    check: HeaderCheck,
}

/// Compiles a regex, naming the config field on failure.
fn compile(field: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("{field}: invalid regex `{pattern}`: {e}"))
}

impl Assertions {
    /// Compiles the assertions; errors name the offending config field.
    pub fn compile(
        contains: &[String],
        not_contains: &[String],
        body_regex: &[String],
        json: &[JsonAssertion],
        headers: &[HeaderAssertion],
    ) -> Result<Self, String> {
        let body_regex = body_regex
            .iter()
            .enumerate()
            .map(|(i, p)| compile(&format!("body_regex[{i}]"), p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut compiled_json = Vec::new();
        for (i, a) in json.iter().enumerate() {
            let field = format!("json_assertions[{i}]");
            let path = JsonPath::parse(&a.path)
                .map_err(|e| format!("{field}.path: invalid JSONPath `{}`: {e}", a.path))?;
            let value = match (&a.value, a.operator.needs_value()) {
                (Some(v), _) => v.clone(),
                (None, false) => Value::Null,
                (None, true) => {
                    return Err(format!(
                        "{field}.value is required for operator `{}`",
                        a.operator.name()
                    ));
                }
            };
            let regex = if a.operator == Operator::Matches {
                let Some(pattern) = value.as_str() else {
                    return Err(format!(
                        "{field}.value must be a regex string for operator `matches`"
                    ));
                };
                Some(compile(&format!("{field}.value"), pattern)?)
            } else {
                None
            };
            compiled_json.push(CompiledJson {
                source: a.path.clone(),
                path,
                operator: a.operator,
                value,
                regex,
            });
        }
        let mut compiled_headers = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            let field = format!("header_assertions[{i}]");
            if h.name.trim().is_empty() {
                return Err(format!("{field}.name is empty"));
            }
            let check = match (&h.value, &h.regex) {
                (Some(_), Some(_)) => {
                    return Err(format!("{field}: set `value` or `regex`, not both"));
                }
                (Some(v), None) => HeaderCheck::Equals(v.clone()),
                (None, Some(r)) => HeaderCheck::Matches(compile(&format!("{field}.regex"), r)?),
                (None, None) => HeaderCheck::Present,
            };
            compiled_headers.push(CompiledHeader {
                name: h.name.trim().to_string(),
                check,
            });
        }
        Ok(Assertions {
            contains: contains.to_vec(),
            not_contains: not_contains.to_vec(),
            body_regex,
            json: compiled_json,
            headers: compiled_headers,
        })
    }

    /// True when there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.contains.is_empty()
            && self.not_contains.is_empty()
            && self.body_regex.is_empty()
            && self.json.is_empty()
            && self.headers.is_empty()
    }

    /// Evaluates every assertion; returns the failures as human sentences, in config order
    /// (headers, then body, then JSON).
    pub fn evaluate(&self, headers: &[(String, String)], body: &str) -> Vec<String> {
        let mut failures = Vec::new();
        for h in &self.headers {
            let values: Vec<&str> = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(&h.name))
                .map(|(_, v)| v.as_str())
                .collect();
            match &h.check {
                HeaderCheck::Present if values.is_empty() => {
                    failures.push(format!("header {} is missing", h.name))
                }
                HeaderCheck::Present => {}
                HeaderCheck::Equals(want) if !values.iter().any(|v| v == want) => {
                    failures.push(format!(
                        "header {} is {}, expected {:?}",
                        h.name,
                        describe_values(&values),
                        want
                    ))
                }
                HeaderCheck::Matches(re) if !values.iter().any(|v| re.is_match(v)) => failures
                    .push(format!(
                        "header {} is {}, expected a match for /{}/",
                        h.name,
                        describe_values(&values),
                        re.as_str()
                    )),
                HeaderCheck::Equals(_) | HeaderCheck::Matches(_) => {}
            }
        }
        for s in &self.contains {
            if !body.contains(s.as_str()) {
                failures.push(format!("body does not contain {s:?}"));
            }
        }
        for s in &self.not_contains {
            if body.contains(s.as_str()) {
                failures.push(format!("body contains {s:?}"));
            }
        }
        for re in &self.body_regex {
            if !re.is_match(body) {
                failures.push(format!("body does not match /{}/", re.as_str()));
            }
        }
        if !self.json.is_empty() {
            match serde_json::from_str::<Value>(body) {
                Ok(doc) => {
                    for a in &self.json {
                        if let Err(why) = a.check(&doc) {
                            failures.push(why);
                        }
                    }
                }
                Err(e) => failures.push(format!(
                    "body is not JSON ({e}): {} JSONPath assertion(s) failed",
                    self.json.len()
                )),
            }
        }
        failures
    }
}

fn describe_values(values: &[&str]) -> String {
    match values {
        [] => "missing".to_string(),
        [one] => format!("{one:?}"),
        many => format!("{many:?}"),
    }
}

impl CompiledJson {
    fn check(&self, doc: &Value) -> Result<(), String> {
        let nodes = self.path.query(doc).all();
        let src = &self.source;
        let want = &self.value;
        let shown = || short(&nodes);
        match self.operator {
            Operator::Exists if nodes.is_empty() => Err(format!("{src} does not exist")),
            Operator::NotExists if !nodes.is_empty() => Err(format!("{src} exists ({})", shown())),
            Operator::Exists | Operator::NotExists => Ok(()),
            _ if nodes.is_empty() && self.operator != Operator::Ne => {
                Err(format!("{src} does not exist"))
            }
            Operator::Eq if !nodes.iter().any(|n| json_eq(n, want)) => {
                Err(format!("{src} is {}, expected {want}", shown()))
            }
            Operator::Ne if nodes.iter().any(|n| json_eq(n, want)) => {
                Err(format!("{src} is {want}, expected anything else"))
            }
            Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                let ok = nodes.iter().any(|n| match compare(n, want) {
                    Some(ord) => match self.operator {
                        Operator::Lt => ord.is_lt(),
                        Operator::Le => ord.is_le(),
                        Operator::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    },
                    None => false,
                });
                if ok {
                    Ok(())
                } else {
                    let sym = match self.operator {
                        Operator::Lt => "<",
                        Operator::Le => "<=",
                        Operator::Gt => ">",
                        _ => ">=",
                    };
                    Err(format!("{src} is {}, expected {sym} {want}", shown()))
                }
            }
            Operator::Contains if !nodes.iter().any(|n| json_contains(n, want)) => Err(format!(
                "{src} is {}, expected it to contain {want}",
                shown()
            )),
            Operator::Matches => {
                let ok = self.regex.as_ref().is_some_and(|re| {
                    nodes
                        .iter()
                        .any(|n| scalar_text(n).is_some_and(|t| re.is_match(&t)))
                });
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "{src} is {}, expected a match for /{}/",
                        shown(),
                        want.as_str().unwrap_or("")
                    ))
                }
            }
            Operator::Eq | Operator::Ne | Operator::Contains => Ok(()),
        }
    }
}

/// Equality where numbers compare by value (`1 == 1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

/// Orders two numbers or two strings; anything else is unordered.
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn json_contains(node: &Value, want: &Value) -> bool {
    match (node, want) {
        (Value::String(s), Value::String(w)) => s.contains(w.as_str()),
        (Value::Array(items), w) => items.iter().any(|i| json_eq(i, w)),
        (Value::Object(map), Value::String(k)) => map.contains_key(k),
        _ => false,
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The selected nodes, shortened for a message.
fn short(nodes: &[&Value]) -> String {
    let text = match nodes {
        [] => "missing".to_string(),
        [one] => one.to_string(),
        many => Value::Array(many.iter().map(|v| (*v).clone()).collect()).to_string(),
    };
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_assert(path: &str, op: &str, value: Option<Value>) -> JsonAssertion {
        let mut v = json!({"path": path, "operator": op});
        if let Some(value) = value {
            v["value"] = value;
        }
        serde_json::from_value(v).unwrap()
    }

    fn run_json(assertions: &[JsonAssertion], body: &str) -> Vec<String> {
        Assertions::compile(&[], &[], &[], assertions, &[])
            .unwrap()
            .evaluate(&[], body)
    }

    const DOC: &str = r#"{"status":"ok","version":"1.4.2","count":3,"ratio":0.5,"tags":["a","b"],
        "items":[{"id":1,"state":"up"},{"id":2,"state":"down"}],"meta":{"region":"eu"},"live":true}"#;

    #[test]
    fn json_operators_hold_and_fail_as_documented() {
        let pass = [
            json_assert("$.status", "eq", Some(json!("ok"))),
            json_assert("$.count", "eq", Some(json!(3.0))),
            json_assert("$.status", "ne", Some(json!("down"))),
            json_assert("$.missing", "ne", Some(json!(1))),
            json_assert("$.count", "lt", Some(json!(4))),
            json_assert("$.count", "le", Some(json!(3))),
            json_assert("$.ratio", "gt", Some(json!(0.25))),
            json_assert("$.count", "ge", Some(json!(3))),
            json_assert("$.version", "ge", Some(json!("1.4.0"))),
            json_assert("$.tags", "contains", Some(json!("b"))),
            json_assert("$.status", "contains", Some(json!("k"))),
            json_assert("$.meta", "contains", Some(json!("region"))),
            json_assert("$.items[*].state", "eq", Some(json!("down"))),
            json_assert("$.items[?@.id == 2].state", "eq", Some(json!("down"))),
            json_assert("$.items[?length(@.state) == 4]", "exists", None),
            json_assert("$.meta.region", "exists", None),
            json_assert("$.meta.zone", "not_exists", None),
            json_assert("$.version", "matches", Some(json!(r"^1\.\d+\.\d+$"))),
            json_assert("$.count", "matches", Some(json!("^3$"))),
            json_assert("$.live", "eq", Some(json!(true))),
        ];
        assert_eq!(run_json(&pass, DOC), Vec::<String>::new());

        let fail = [
            (
                json_assert("$.status", "eq", Some(json!("down"))),
                r#"$.status is "ok", expected "down""#,
            ),
            (
                json_assert("$.status", "ne", Some(json!("ok"))),
                r#"$.status is "ok", expected anything else"#,
            ),
            (
                json_assert("$.count", "gt", Some(json!(3))),
                "$.count is 3, expected > 3",
            ),
            (
                json_assert("$.status", "lt", Some(json!(3))),
                r#"$.status is "ok", expected < 3"#,
            ),
            (
                json_assert("$.tags", "contains", Some(json!("z"))),
                r#"$.tags is ["a","b"], expected it to contain "z""#,
            ),
            (
                json_assert("$.nope", "eq", Some(json!(1))),
                "$.nope does not exist",
            ),
            (
                json_assert("$.nope", "exists", None),
                "$.nope does not exist",
            ),
            (
                json_assert("$.meta.region", "not_exists", None),
                r#"$.meta.region exists ("eu")"#,
            ),
            (
                json_assert("$.version", "matches", Some(json!("^2"))),
                r#"$.version is "1.4.2", expected a match for /^2/"#,
            ),
            (
                json_assert("$.items[*].id", "eq", Some(json!(3))),
                "$.items[*].id is [1,2], expected 3",
            ),
        ];
        for (a, want) in fail {
            assert_eq!(
                run_json(std::slice::from_ref(&a), DOC),
                vec![want.to_string()],
                "{a:?}"
            );
        }
    }

    #[test]
    fn json_assertions_on_a_non_json_body_fail() {
        let got = run_json(
            &[
                json_assert("$.a", "exists", None),
                json_assert("$.b", "not_exists", None),
            ],
            "<html>",
        );
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("body is not JSON")
                && got[0].ends_with("2 JSONPath assertion(s) failed"),
            "{got:?}"
        );
    }

    #[test]
    fn compile_errors_name_the_field() {
        let err = Assertions::compile(&[], &[], &["(".into()], &[], &[]).unwrap_err();
        assert!(err.starts_with("body_regex[0]: invalid regex"), "{err}");
        let err = Assertions::compile(&[], &[], &[], &[json_assert("status", "exists", None)], &[])
            .unwrap_err();
        assert!(
            err.starts_with("json_assertions[0].path: invalid JSONPath"),
            "{err}"
        );
        let err =
            Assertions::compile(&[], &[], &[], &[json_assert("$.a", "eq", None)], &[]).unwrap_err();
        assert_eq!(
            err,
            "json_assertions[0].value is required for operator `eq`"
        );
        let err = Assertions::compile(
            &[],
            &[],
            &[],
            &[json_assert("$.a", "matches", Some(json!(5)))],
            &[],
        )
        .unwrap_err();
        assert!(err.contains("must be a regex string"), "{err}");
        let both = HeaderAssertion {
            name: "x".into(),
            value: Some("a".into()),
            regex: Some("b".into()),
        };
        let err = Assertions::compile(&[], &[], &[], &[], &[both]).unwrap_err();
        assert_eq!(
            err,
            "header_assertions[0]: set `value` or `regex`, not both"
        );
        let bad: Result<JsonAssertion, _> =
            serde_json::from_value(json!({"path": "$", "operator": "approx"}));
        assert!(bad.is_err());
    }

    #[test]
    fn body_and_header_assertions() {
        let headers = vec![
            (
                "Content-Type".to_string(),
                "application/json; charset=utf-8".to_string(),
            ),
            ("Cache-Control".to_string(), "no-store".to_string()),
            ("cache-control".to_string(), "private".to_string()),
        ];
        let a = Assertions::compile(
            &["healthy".into()],
            &["error".into()],
            &[r"uptime=\d+".into()],
            &[],
            &[
                HeaderAssertion {
                    name: "content-type".into(),
                    value: None,
                    regex: Some("^application/json".into()),
                },
                HeaderAssertion {
                    name: "CACHE-CONTROL".into(),
                    value: Some("private".into()),
                    regex: None,
                },
                HeaderAssertion {
                    name: "Cache-Control".into(),
                    value: None,
                    regex: None,
                },
            ],
        )
        .unwrap();
        assert!(!a.is_empty());
        assert!(a.evaluate(&headers, "healthy uptime=42").is_empty());
        let failures = a.evaluate(&headers[..1], "error: sick");
        assert_eq!(
            failures,
            vec![
                "header CACHE-CONTROL is missing, expected \"private\"",
                "header Cache-Control is missing",
                "body does not contain \"healthy\"",
                "body contains \"error\"",
                r"body does not match /uptime=\d+/",
            ]
        );
        let wrong = vec![("content-type".to_string(), "text/html".to_string())];
        let failures = a.evaluate(&wrong, "healthy uptime=1");
        assert_eq!(
            failures[0],
            "header content-type is \"text/html\", expected a match for /^application/json/"
        );
        assert!(Assertions::default().is_empty());
    }
}
