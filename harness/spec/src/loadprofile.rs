//! The load profile file: which HTTP requests write, read and compare-and-set a key on the
//! system under test, how hard to push, and how to find the value in a read's reply.
//!
//! Nothing here knows the target system: a profile for etcd's JSON gateway, Consul's KV API or
//! any other HTTP key-value-ish API differs only in its templates. Templates may use the
//! placeholders `{{key}}`, `{{value}}` and, in a cas, `{{expected}}`, each also with `|base64`.
//! They are parsed once ([`LoadProfile::compile`], when the plan is built), never per request.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

/// A load profile as written in `loadprofiles/*.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadProfile {
    #[serde(default)]
    pub description: String,
    /// The container port the requests go to on each target node.
    pub port: u16,
    /// Concurrent clients (goose users); client `i` starts on target `i mod n`.
    pub clients: u32,
    /// A client whose node refuses connections moves on to the next target, as clients
    /// configured with several endpoints do. Without it, a client stays on its node.
    #[serde(default)]
    pub failover: bool,
    /// Cap on operations per second over all clients.
    pub rate: f64,
    /// Share of reads, from 0 to 1.
    pub read_ratio: f64,
    /// Share of compare-and-set operations, from 0 to 1 (with `read_ratio`, at most 1); the
    /// rest are writes. Needs `cas`.
    #[serde(default)]
    pub cas_ratio: f64,
    pub keys: KeySpace,
    /// Per request; a timeout is recorded as unknown (a write) or failed (a read).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub write: WriteRequest,
    pub read: ReadRequest,
    /// The request that sets `{{value}}` only if the key still holds `{{expected}}`.
    #[serde(default)]
    pub cas: Option<CasRequest>,
    /// The response header naming the backend that served a request (e.g. set by a proxy).
    #[serde(default)]
    pub served_by_header: Option<String>,
}

/// The keys the load uses: `prefix` followed by `0 .. count`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpace {
    pub prefix: String,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

/// The request that writes `{{value}}` under `{{key}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    pub method: HttpMethod,
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
    /// Extra request headers; their values are templates too.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The request that reads `{{key}}`, and where its reply holds the value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub method: HttpMethod,
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub value: ValueLocation,
    /// Statuses that mean "the key is absent" (e.g. `[404]` for APIs that answer so); a 2xx
    /// reply without the value also means absent.
    #[serde(default)]
    pub absent_status: Vec<u16>,
}

/// The compare-and-set request: set `{{value}}` under `{{key}}` only if it holds
/// `{{expected}}` (the value this client last read there), and where the reply says whether
/// the compare held.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasRequest {
    pub method: HttpMethod,
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub succeeded: SucceededLocation,
}

/// Where a cas reply says whether the compare held: `true` there means the value was set;
/// `false`, null or nothing means the compare failed and nothing changed (a definite no-op;
/// proto3 JSON leaves a false field out).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SucceededLocation {
    /// A JSON pointer (RFC 6901) into the reply body.
    pub json: String,
}

/// Where a read's reply holds the value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueLocation {
    /// A JSON pointer (RFC 6901) into the reply body; nothing there means the key is absent.
    pub json: String,
    /// How the value found there is encoded.
    #[serde(default)]
    pub decode: Option<Decoding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    Base64,
}

impl LoadProfile {
    /// Checks the profile and parses its templates, once, for rendering requests; every
    /// problem is reported, each message naming its field.
    pub fn compile(self) -> Result<CompiledProfile, Vec<String>> {
        let mut errors = Vec::new();
        if self.port == 0 {
            errors.push("port: must be a port number from 1 to 65535, got 0".to_string());
        }
        if self.clients < 1 {
            errors.push(
                "clients: must be at least 1, got 0: set it to the number of concurrent clients"
                    .to_string(),
            );
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            errors.push(format!(
                "rate: must be above 0 operations per second, got {}",
                self.rate
            ));
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            errors.push(format!(
                "read_ratio: must be between 0 and 1 (0.5 means half the operations are reads), got {}",
                self.read_ratio
            ));
        }
        if !(0.0..=1.0).contains(&self.cas_ratio) {
            errors.push(format!(
                "cas_ratio: must be between 0 and 1 (0.1 means a tenth of the operations are compare-and-set), got {}",
                self.cas_ratio
            ));
        } else if (0.0..=1.0).contains(&self.read_ratio)
            && self.read_ratio + self.cas_ratio > 1.0 + 1e-9
        {
            errors.push(format!(
                "cas_ratio: read_ratio {} and cas_ratio {} add up to more than 1: the rest are writes",
                self.read_ratio, self.cas_ratio
            ));
        }
        if self.cas_ratio > 0.0 && self.cas.is_none() {
            errors.push(format!(
                "cas_ratio: {} of the operations are compare-and-set, but the profile has no `cas` request: add one or set cas_ratio to 0",
                self.cas_ratio
            ));
        }
        if self.keys.count < 1 {
            errors.push(
                "keys.count: must be at least 1, got 0: set how many keys the load spreads over"
                    .to_string(),
            );
        }
        if self.timeout.is_zero() {
            errors.push("timeout: must be above 0, e.g. 2s".to_string());
        }
        if let Some(header) = &self.served_by_header {
            if !is_header_name(header) {
                errors.push(format!(
                    "served_by_header: {header:?} is not a valid HTTP header name"
                ));
            }
        }

        // A template that does not parse says so once; checking what it uses would only
        // add false complaints about the same typo.
        let parse_errors_before = errors.len();
        let write = CompiledRequest::compile(
            "write",
            self.write.method,
            &self.write.path,
            self.write.body.as_deref(),
            &self.write.headers,
            &mut errors,
        );
        let read = CompiledRequest::compile(
            "read",
            self.read.method,
            &self.read.path,
            self.read.body.as_deref(),
            &self.read.headers,
            &mut errors,
        );
        let cas = self.cas.as_ref().map(|cas| {
            let request = CompiledRequest::compile(
                "cas",
                cas.method,
                &cas.path,
                cas.body.as_deref(),
                &cas.headers,
                &mut errors,
            );
            (request, cas.succeeded.json.clone())
        });
        let templates_parsed = errors.len() == parse_errors_before;
        if let Some((request, succeeded)) = &cas {
            for (field, placeholder, why) in [
                (Field::Key, "{{key}}", "every cas would hit the same key"),
                (Field::Value, "{{value}}", "a cas would set no value"),
                (
                    Field::Expected,
                    "{{expected}}",
                    "a cas would compare against nothing",
                ),
            ] {
                if templates_parsed && !request.uses(field) {
                    errors.push(format!("cas: no template uses {placeholder}, so {why}: put {placeholder} or its |base64 form in cas.path or cas.body"));
                }
            }
            if !succeeded.starts_with('/') {
                errors.push(format!(
                    "cas.succeeded.json: a JSON pointer starts with \"/\", got {succeeded:?} (e.g. /succeeded)"
                ));
            }
        }
        for (name, request) in [("write", &write), ("read", &read)] {
            if request.uses(Field::Expected) {
                errors.push(format!(
                    "{name}: {{{{expected}}}} has a meaning only in a cas request: remove it"
                ));
            }
        }
        if templates_parsed && !write.uses(Field::Key) {
            errors.push("write: no template uses {{key}}, so every write would hit the same key: put {{key}} or {{key|base64}} in write.path or write.body".to_string());
        }
        if templates_parsed && !write.uses(Field::Value) {
            errors.push("write: no template uses {{value}}, so writes would carry no value: put {{value}} or {{value|base64}} in write.path or write.body".to_string());
        }
        if templates_parsed && !read.uses(Field::Key) {
            errors.push("read: no template uses {{key}}, so every read would hit the same key: put {{key}} or {{key|base64}} in read.path or read.body".to_string());
        }
        if read.uses(Field::Value) {
            errors.push(
                "read: {{value}} has no meaning in a read (it reads whatever value is there): remove it".to_string(),
            );
        }
        if !self.read.value.json.starts_with('/') {
            errors.push(format!(
                "read.value.json: a JSON pointer starts with \"/\", got {:?} (e.g. /kvs/0/value)",
                self.read.value.json
            ));
        }
        for status in &self.read.absent_status {
            if !(100..=599).contains(status) {
                errors.push(format!(
                    "read.absent_status: {status} is not an HTTP status (100 to 599)"
                ));
            }
        }

        if errors.is_empty() {
            Ok(CompiledProfile {
                write,
                read,
                cas: cas.map(|(request, succeeded)| CompiledCas { request, succeeded }),
                source: self,
            })
        } else {
            Err(errors)
        }
    }

    /// The names of all keys the load uses, in index order.
    pub fn key_names(&self) -> Vec<String> {
        (0..self.keys.count)
            .map(|index| format!("{}{index}", self.keys.prefix))
            .collect()
    }
}

/// A validated profile with its requests ready to render: built once, with the plan.
#[derive(Debug, Clone)]
pub struct CompiledProfile {
    /// The profile as written (with the scenario's rate and clients applied).
    pub source: LoadProfile,
    pub write: CompiledRequest,
    pub read: CompiledRequest,
    pub cas: Option<CompiledCas>,
}

/// The compare-and-set request and where its reply says whether the compare held.
#[derive(Debug, Clone)]
pub struct CompiledCas {
    pub request: CompiledRequest,
    succeeded: String,
}

/// One request with its templates parsed.
#[derive(Debug, Clone)]
pub struct CompiledRequest {
    pub method: HttpMethod,
    path: Template,
    body: Option<Template>,
    headers: Vec<(String, Template)>,
}

/// A request rendered for one key (and, for a write, one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedRequest {
    pub method: HttpMethod,
    pub path: String,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl CompiledRequest {
    fn compile(
        name: &str,
        method: HttpMethod,
        path: &str,
        body: Option<&str>,
        headers: &BTreeMap<String, String>,
        errors: &mut Vec<String>,
    ) -> CompiledRequest {
        let mut parse = |field: String, text: &str| {
            Template::parse(text).unwrap_or_else(|message| {
                errors.push(format!("{field}: {message}"));
                Template::default()
            })
        };
        let path_template = parse(format!("{name}.path"), path);
        let body = body.map(|text| parse(format!("{name}.body"), text));
        let mut compiled_headers = Vec::new();
        for (header, text) in headers {
            compiled_headers.push((
                header.clone(),
                parse(format!("{name}.headers.{header}"), text),
            ));
        }
        if !path.starts_with('/') {
            errors.push(format!("{name}.path: must start with \"/\", got {path:?}"));
        }
        for (header, _) in &compiled_headers {
            if !is_header_name(header) {
                errors.push(format!(
                    "{name}.headers: {header:?} is not a valid HTTP header name"
                ));
            }
        }
        CompiledRequest {
            method,
            path: path_template,
            body,
            headers: compiled_headers,
        }
    }

    fn uses(&self, field: Field) -> bool {
        self.path.uses(field)
            || self.body.as_ref().is_some_and(|body| body.uses(field))
            || self.headers.iter().any(|(_, value)| value.uses(field))
    }

    /// Fills the templates in; a read passes an empty `value`, and a read or write an empty
    /// `expected` (their templates cannot use them).
    pub fn render(&self, fields: &Fields) -> RenderedRequest {
        RenderedRequest {
            method: self.method,
            path: self.path.render(fields),
            body: self.body.as_ref().map(|body| body.render(fields)),
            headers: self
                .headers
                .iter()
                .map(|(name, template)| (name.clone(), template.render(fields)))
                .collect(),
        }
    }
}

/// What a request's placeholders are filled with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub expected: &'a str,
}

impl<'a> Fields<'a> {
    /// A read's: the key alone.
    pub fn key(key: &'a str) -> Self {
        Fields {
            key,
            ..Fields::default()
        }
    }
}

impl CompiledCas {
    /// Whether a 2xx cas reply says the compare held (and the value was set); `Err` (saying
    /// why) when the reply cannot be understood, so the cas may or may not have happened.
    pub fn succeeded(&self, body: &[u8]) -> Result<bool, String> {
        let document: serde_json::Value =
            serde_json::from_slice(body).map_err(|error| format!("reply is not JSON: {error}"))?;
        match document.pointer(&self.succeeded) {
            None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => {
                Ok(false)
            }
            Some(serde_json::Value::Bool(true)) => Ok(true),
            Some(other) => Err(format!(
                "the reply's {} is not true or false but {other}",
                self.succeeded
            )),
        }
    }
}

impl CompiledProfile {
    /// The names of all keys the load uses, in index order.
    pub fn key_names(&self) -> Vec<String> {
        self.source.key_names()
    }

    /// The value a successful read's reply holds: `Ok(None)` when the key is absent, `Err`
    /// (saying why) when the reply cannot be understood.
    pub fn extract_value(&self, body: &[u8]) -> Result<Option<String>, String> {
        let location = &self.source.read.value;
        let document: serde_json::Value =
            serde_json::from_slice(body).map_err(|error| format!("reply is not JSON: {error}"))?;
        let found = match document.pointer(&location.json) {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::String(text)) => text,
            Some(other) => {
                return Err(format!(
                    "the reply's {} is not a string but {other}",
                    location.json
                ))
            }
        };
        match location.decode {
            None => Ok(Some(found.clone())),
            Some(Decoding::Base64) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(found)
                    .map_err(|error| {
                        format!("the reply's {} is not base64: {error}", location.json)
                    })?;
                String::from_utf8(bytes).map(Some).map_err(|_| {
                    format!(
                        "the reply's {} does not decode to UTF-8 text",
                        location.json
                    )
                })
            }
        }
    }

    /// Whether a read's non-2xx status means the key is absent.
    pub fn is_absent_status(&self, status: u16) -> bool {
        self.source.read.absent_status.contains(&status)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Key,
    Value,
    Expected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Placeholder { field: Field, base64: bool },
}

/// A parsed template: literal text and placeholders. Single braces are literal text, so JSON
/// bodies need no escaping (`{{` never occurs in JSON outside a string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Template {
    segments: Vec<Segment>,
}

const PLACEHOLDERS: &str =
    "{{key}}, {{value}} or, in a cas, {{expected}}, each also as {{key|base64}} and so on";

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "a placeholder opened with {{{{ is never closed with }}}}: use {PLACEHOLDERS}"
                )
            })?;
            let inner = after[..close].trim();
            let (field, base64) = match inner {
                "key" => (Field::Key, false),
                "value" => (Field::Value, false),
                "expected" => (Field::Expected, false),
                "key|base64" => (Field::Key, true),
                "value|base64" => (Field::Value, true),
                "expected|base64" => (Field::Expected, true),
                unknown => {
                    return Err(format!(
                        "unknown placeholder {{{{{unknown}}}}}: use {PLACEHOLDERS}"
                    ))
                }
            };
            segments.push(Segment::Placeholder { field, base64 });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Template { segments })
    }

    fn uses(&self, wanted: Field) -> bool {
        self.segments.iter().any(
            |segment| matches!(segment, Segment::Placeholder { field, .. } if *field == wanted),
        )
    }

    fn render(&self, fields: &Fields) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Placeholder { field, base64 } => {
                    let raw = match field {
                        Field::Key => fields.key,
                        Field::Value => fields.value,
                        Field::Expected => fields.expected,
                    };
                    if *base64 {
                        base64::engine::general_purpose::STANDARD.encode_string(raw, &mut out);
                    } else {
                        out.push_str(raw);
                    }
                }
            }
        }
        out
    }
}

/// RFC 9110 token characters, which is what an HTTP header name may hold.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETCD_KV: &str = include_str!("../../../loadprofiles/etcd-kv.yaml");

    fn etcd_profile() -> LoadProfile {
        serde_saphyr::from_str(ETCD_KV).expect("etcd-kv.yaml parses")
    }

    /// The profile text with one line replaced, to craft a broken profile.
    fn edited(from: &str, to: &str) -> String {
        assert!(
            ETCD_KV.contains(from),
            "etcd-kv.yaml no longer holds {from:?}"
        );
        ETCD_KV.replacen(from, to, 1)
    }

    fn validate(profile: &LoadProfile) -> Result<(), Vec<String>> {
        profile.clone().compile().map(|_| ())
    }

    fn errors_of(text: &str) -> Vec<String> {
        let profile: LoadProfile = serde_saphyr::from_str(text).expect("profile parses");
        validate(&profile).expect_err("profile must be refused")
    }

    #[test]
    fn the_bundled_etcd_profile_parses_and_validates() {
        // Tuning knobs (clients, rate, key count) may change; what makes it etcd may not.
        let profile = etcd_profile();
        assert_eq!(validate(&profile), Ok(()));
        assert_eq!(profile.port, 2379);
        assert_eq!(profile.timeout, Duration::from_secs(2));
        assert_eq!(profile.write.method, HttpMethod::Post);
        assert_eq!(profile.write.path, "/v3/kv/put");
        assert_eq!(profile.read.path, "/v3/kv/range");
        assert_eq!(profile.read.value.json, "/kvs/0/value");
        assert_eq!(profile.read.value.decode, Some(Decoding::Base64));
        let keys = profile.key_names();
        assert_eq!(keys.len(), profile.keys.count as usize);
        assert_eq!(keys[0], format!("{}0", profile.keys.prefix));
        assert_eq!(
            keys[keys.len() - 1],
            format!("{}{}", profile.keys.prefix, profile.keys.count - 1)
        );
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let text = format!("{ETCD_KV}\nthreads: 4\n");
        let error = serde_saphyr::from_str::<LoadProfile>(&text)
            .expect_err("an unknown key must be refused")
            .to_string();
        assert!(error.contains("threads"), "{error}");
    }

    #[test]
    fn an_unknown_placeholder_is_named() {
        let text = edited("{{value|base64}}", "{{val|base64}}");
        let errors = errors_of(&text);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("write.body: unknown placeholder {{val|base64}}")),
            "{errors:?}"
        );
    }

    #[test]
    fn an_unclosed_placeholder_is_refused() {
        let text = edited("{{key|base64}}\"}'", "{{key|base64\"}'");
        let errors = errors_of(&text);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("read.body:") && e.contains("never closed")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_read_ratio_outside_zero_to_one_is_refused() {
        let mut profile = etcd_profile();
        profile.read_ratio = 1.5;
        assert_eq!(
            validate(&profile),
            Err(vec![
                "read_ratio: must be between 0 and 1 (0.5 means half the operations are reads), got 1.5".to_string()
            ])
        );
        profile.read_ratio = -0.1;
        let errors = validate(&profile).expect_err("refused");
        assert!(errors[0].starts_with("read_ratio:"), "{errors:?}");
        profile.read_ratio = f64::NAN;
        assert!(validate(&profile).is_err(), "NaN is no ratio");
    }

    #[test]
    fn every_numeric_limit_is_reported_at_once() {
        let mut profile = etcd_profile();
        profile.clients = 0;
        profile.rate = 0.0;
        profile.keys.count = 0;
        profile.timeout = Duration::ZERO;
        profile.read.value.json = "kvs/0/value".to_string();
        let errors = validate(&profile).expect_err("refused");
        for field in [
            "clients:",
            "rate:",
            "keys.count:",
            "timeout:",
            "read.value.json:",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(field)),
                "{field} missing from {errors:?}"
            );
        }
    }

    #[test]
    fn a_write_without_its_value_and_a_read_with_one_are_refused() {
        let mut profile = etcd_profile();
        profile.write.body = Some(r#"{"key": "{{key|base64}}"}"#.to_string());
        profile.read.body = Some(r#"{"key": "{{key}}", "v": "{{value}}"}"#.to_string());
        let errors = validate(&profile).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("write: no template uses {{value}}")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("read: {{value}} has no meaning")),
            "{errors:?}"
        );
    }

    #[test]
    fn templates_render_plain_and_base64_placeholders() {
        let compiled = etcd_profile().compile().expect("valid");
        let write = compiled.write.render(&Fields {
            key: "fd/7",
            value: "42-0-3",
            expected: "",
        });
        assert_eq!(write.method, HttpMethod::Post);
        assert_eq!(write.path, "/v3/kv/put");
        // base64("fd/7") = ZmQvNw==, base64("42-0-3") = NDItMC0z
        assert_eq!(
            write.body.as_deref(),
            Some(r#"{"key": "ZmQvNw==", "value": "NDItMC0z"}"#)
        );
        let read = compiled.read.render(&Fields::key("fd/7"));
        assert_eq!(read.body.as_deref(), Some(r#"{"key": "ZmQvNw=="}"#));

        let template = Template::parse("/v1/kv/{{ key }}?v={{value}}&b={{key|base64}}")
            .expect("valid template");
        assert_eq!(
            template.render(&Fields {
                key: "a/b",
                value: "x",
                expected: ""
            }),
            "/v1/kv/a/b?v=x&b=YS9i"
        );
        assert_eq!(
            Template::parse("{}")
                .expect("literal")
                .render(&Fields::key("k")),
            "{}"
        );
    }

    #[test]
    fn a_reply_value_is_found_decoded_or_absent() {
        let compiled = etcd_profile().compile().expect("valid");
        let present = br#"{"header":{"revision":"5"},"kvs":[{"key":"ZmQvNw==","value":"NDItMC0z"}],"count":"1"}"#;
        assert_eq!(
            compiled.extract_value(present),
            Ok(Some("42-0-3".to_string()))
        );
        let absent = br#"{"header":{"revision":"5"}}"#;
        assert_eq!(compiled.extract_value(absent), Ok(None));
        assert!(compiled.extract_value(b"<html>busy</html>").is_err());
        let not_base64 = br#"{"kvs":[{"value":"%%%"}]}"#;
        assert!(compiled.extract_value(not_base64).is_err());
        let a_number = br#"{"kvs":[{"value":7}]}"#;
        assert!(compiled.extract_value(a_number).is_err());
    }

    #[test]
    fn a_profile_for_another_api_fits() {
        // Consul-style: the key in the path, the value as the raw body, 404 when absent.
        let text = r#"
port: 8500
clients: 2
rate: 10
read_ratio: 0.3
keys: { prefix: "fd-", count: 5 }
timeout: 500ms
write: { method: PUT, path: "/v1/kv/{{key}}", body: "{{value}}", headers: { Content-Type: text/plain } }
read:
  method: GET
  path: "/v1/kv/{{key}}"
  value: { json: /0/Value, decode: base64 }
  absent_status: [404]
served_by_header: X-Served-By
"#;
        let profile: LoadProfile = serde_saphyr::from_str(text).expect("parses");
        let compiled = profile.clone().compile().expect("valid");
        let write = compiled.write.render(&Fields {
            key: "fd-1",
            value: "v1",
            expected: "",
        });
        assert_eq!(write.path, "/v1/kv/fd-1");
        assert_eq!(write.body.as_deref(), Some("v1"));
        assert_eq!(
            write.headers,
            vec![("Content-Type".to_string(), "text/plain".to_string())]
        );
        assert!(compiled.is_absent_status(404));
        assert_eq!(profile.timeout, Duration::from_millis(500));
    }

    #[test]
    fn a_cas_renders_its_expected_value_and_reads_whether_the_compare_held() {
        let compiled = etcd_profile().compile().expect("valid");
        let cas = compiled
            .cas
            .as_ref()
            .expect("the bundled profile has a cas");
        let rendered = cas.request.render(&Fields {
            key: "fd/7",
            value: "42-0-4",
            expected: "42-0-3",
        });
        assert_eq!(rendered.path, "/v3/kv/txn");
        let body = rendered.body.expect("a body");
        // base64 of the key, the expected value and the new value
        for part in ["ZmQvNw==", "NDItMC0z", "NDItMC00"] {
            assert!(body.contains(part), "{part} missing from {body}");
        }
        assert_eq!(
            cas.succeeded(br#"{"header":{},"succeeded":true}"#),
            Ok(true)
        );
        // proto3 JSON leaves a false field out
        assert_eq!(cas.succeeded(br#"{"header":{}}"#), Ok(false));
        assert_eq!(cas.succeeded(br#"{"succeeded":false}"#), Ok(false));
        assert!(cas.succeeded(br#"{"succeeded":"yes"}"#).is_err());
        assert!(cas.succeeded(b"busy").is_err());
    }

    #[test]
    fn a_cas_share_needs_a_cas_request_that_uses_every_field() {
        let mut profile = etcd_profile();
        profile.cas = None;
        let errors = validate(&profile).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("cas_ratio:") && e.contains("no `cas` request")),
            "{errors:?}"
        );

        let mut profile = etcd_profile();
        profile.read_ratio = 0.95;
        let errors = validate(&profile).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("cas_ratio:") && e.contains("more than 1")),
            "{errors:?}"
        );

        let mut profile = etcd_profile();
        let cas = profile.cas.as_mut().expect("a cas");
        cas.body = Some(r#"{"key": "{{key}}", "value": "{{value}}"}"#.to_string());
        cas.succeeded.json = "succeeded".to_string();
        profile.write.body =
            Some(r#"{"key": "{{key}}", "value": "{{value}}", "e": "{{expected}}"}"#.to_string());
        let errors = validate(&profile).expect_err("refused");
        for wanted in [
            "cas: no template uses {{expected}}",
            "cas.succeeded.json: a JSON pointer",
            "write: {{expected}} has a meaning only in a cas",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(wanted)),
                "{wanted} missing from {errors:?}"
            );
        }
    }
}
