//! The checks run for each case.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::SystemTime;

use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    ChannelContext, Connector, ConnectorError, HttpRequest, HttpResponse, OutboundMessage,
    ProviderError, Secret, SecretStore, Secrets, SendReceipt, Timestamp, WebhookOutcome,
    WebhookRequest, receive_webhook,
};

use crate::fixture::{Case, CaseKind, ExpectedError, ExpectedProviderError, WebhookOutcomeSpec};
use crate::{Failure, Report};

/// Collects check results for one case.
struct Checker<'a> {
    case: &'a Path,
    report: &'a mut Report,
}

impl Checker<'_> {
    fn check(&mut self, check: &'static str, result: Result<(), String>) {
        self.report.checks += 1;
        if let Err(detail) = result {
            self.report.failures.push(Failure {
                case: self.case.to_owned(),
                check,
                detail,
            });
        }
    }
}

/// Runs one case and the generic checks around it, adding results to `report`.
pub fn run_case(connector: &dyn Connector, path: &Path, case: &Case, report: &mut Report) {
    let mut checker = Checker { case: path, report };
    let secrets = match case.channel.resolve_secrets() {
        Ok(secrets) => secrets,
        Err(e) => return checker.check("resolve_secrets", Err(e.to_string())),
    };
    let ctx = case.channel.context();
    let now = case
        .now
        .unwrap_or_else(|| Timestamp::from_system_time(SystemTime::now()));
    let env = Env {
        connector,
        ctx: &ctx,
        secrets: &secrets,
        now,
    };
    match &case.kind {
        CaseKind::Webhook {
            request,
            expect,
            expect_error,
        } => env.webhook_checks(
            &mut checker,
            request,
            expect.as_ref(),
            expect_error.as_ref(),
        ),
        CaseKind::Send {
            message,
            expect_request,
            expect_error,
        } => env.send_checks(
            &mut checker,
            message,
            expect_request.as_ref(),
            expect_error.as_ref(),
        ),
        CaseKind::SendResponse {
            message,
            response,
            expect_receipt,
            expect_provider_error,
        } => env.response_checks(
            &mut checker,
            message,
            response,
            expect_receipt.as_ref(),
            expect_provider_error.as_ref(),
        ),
    }
}

struct Env<'a> {
    connector: &'a dyn Connector,
    ctx: &'a ChannelContext,
    secrets: &'a Secrets,
    now: Timestamp,
}

impl Env<'_> {
    fn receive(
        &self,
        req: &WebhookRequest,
    ) -> Result<Result<WebhookOutcome, ConnectorError>, String> {
        no_panic(|| receive_webhook(self.connector, self.ctx, self.secrets, req, self.now))
    }

    fn webhook_checks(
        &self,
        checker: &mut Checker<'_>,
        request: &WebhookRequest,
        expect: Option<&WebhookOutcomeSpec>,
        expect_error: Option<&ExpectedError>,
    ) {
        let first = match self.receive(request) {
            Ok(result) => result,
            Err(panic) => return checker.check("webhook", Err(panic)),
        };
        match (expect, expect_error) {
            (Some(spec), None) => checker.check("webhook_outcome", outcome_matches(&first, spec)),
            (None, Some(expected)) => {
                checker.check("webhook_error", error_matches(&first, expected))
            }
            _ => {
                return checker.check(
                    "case",
                    Err("give exactly one of `expect`, `expect_error`".into()),
                );
            }
        }

        let second = self.receive(request);
        checker.check(
            "duplicate_delivery_is_identical",
            match second {
                Ok(second) if format!("{second:?}") == format!("{first:?}") => Ok(()),
                Ok(_) => Err("the same request parsed twice gave different results".into()),
                Err(panic) => Err(panic),
            },
        );

        let Ok(outcome) = &first else { return };
        checker.check(
            "events_carry_provider_ids",
            match outcome
                .events
                .iter()
                .find(|e| e.dedupe_key().provider_id.is_empty())
            {
                Some(event) => Err(format!("event without a provider id: {event:?}")),
                None => Ok(()),
            },
        );

        let handshake =
            outcome.events.is_empty() && request.method == switchboard_core::Method::Get;
        let scheme = self.connector.webhook_auth(self.ctx).ok();
        let authenticated = scheme.as_ref().is_some_and(|s| *s != WebhookAuth::None);
        if authenticated && !handshake {
            if !request.body.is_empty() && scheme.as_ref().is_some_and(WebhookAuth::signs_body) {
                let mut mutated = request.clone();
                let middle = mutated.body.len() / 2;
                mutated.body[middle] ^= 0x01;
                checker.check(
                    "signature_rejects_mutated_body",
                    self.expect_rejected(&mutated),
                );
            }
            let mut bare = request.clone();
            bare.headers.clear();
            checker.check(
                "signature_rejects_missing_headers",
                self.expect_rejected(&bare),
            );
        }

        checker.check("hostile_input_never_panics", self.hostile_webhooks(request));
    }

    fn expect_rejected(&self, req: &WebhookRequest) -> Result<(), String> {
        match self.receive(req)? {
            Err(ConnectorError::InvalidSignature { .. }) => Ok(()),
            Err(other) => Err(format!("expected an invalid signature, got: {other}")),
            Ok(_) => Err("a tampered request was accepted".into()),
        }
    }

    /// Feeds the parser, behind the auth check, with input no provider should send.
    fn hostile_webhooks(&self, request: &WebhookRequest) -> Result<(), String> {
        let body = &request.body;
        let is_json = request
            .header("content-type")
            .is_some_and(|ct| ct.contains("json"));
        let mut bodies: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            (
                "invalid utf-8",
                [body.as_slice(), &[0xff, 0xfe, 0x80]].concat(),
            ),
            ("doubled", [body.as_slice(), body.as_slice()].concat()),
            ("deep nesting", "[".repeat(100_000).into_bytes()),
            ("deep objects", "{\"a\":".repeat(50_000).into_bytes()),
            ("1 MiB", vec![b'a'; 1 << 20]),
            ("noise", noise(4096)),
            (
                "huge number",
                b"{\"entry\":[1e999999999],\"NumMedia\":\"99999999999999999999\"}".to_vec(),
            ),
        ];
        if body.len() > 1 {
            bodies.push(("truncated", body[..body.len() / 2].to_vec()));
        }
        for (what, bytes) in bodies {
            let mut req = request.clone();
            req.body = bytes;
            let result = no_panic(|| self.connector.parse_webhook(self.ctx, &req))
                .map_err(|panic| format!("{what} body: {panic}"))?;
            if is_json && what == "truncated" && result.is_ok() {
                return Err("a truncated JSON body parsed without error".into());
            }
        }
        Ok(())
    }

    fn send_checks(
        &self,
        checker: &mut Checker<'_>,
        message: &OutboundMessage,
        expect_request: Option<&HttpRequest>,
        expect_error: Option<&ExpectedError>,
    ) {
        let build = || no_panic(|| self.connector.build_send(self.ctx, message));
        let first = match build() {
            Ok(result) => result,
            Err(panic) => return checker.check("build_send", Err(panic)),
        };
        match (expect_request, expect_error) {
            (Some(expected), None) => {
                checker.check("build_send", request_matches(&first, expected))
            }
            (None, Some(expected)) => {
                checker.check("build_send_error", error_matches(&first, expected))
            }
            _ => {
                return checker.check(
                    "case",
                    Err("give exactly one of `expect_request`, `expect_error`".into()),
                );
            }
        }
        checker.check(
            "build_send_is_deterministic",
            match build() {
                Ok(second) if second == first => Ok(()),
                Ok(_) => Err("the same message built two different requests".into()),
                Err(panic) => Err(panic),
            },
        );
        if let Ok(request) = &first {
            checker.check("no_secret_in_request", self.no_secret_in(request));
        }
    }

    fn no_secret_in(&self, request: &HttpRequest) -> Result<(), String> {
        let text = format!(
            "{} {:?} {}",
            request.url,
            request.headers,
            String::from_utf8_lossy(&request.body)
        );
        for name in self.secrets.names() {
            let Some(value) = self.secrets.secret(name).map(Secret::expose) else {
                continue;
            };
            // Short values (test tokens like `1`) would match by coincidence.
            if value.len() >= 4 && text.contains(value) {
                return Err(format!("the request contains the value of secret `{name}`"));
            }
        }
        Ok(())
    }

    fn response_checks(
        &self,
        checker: &mut Checker<'_>,
        message: &OutboundMessage,
        response: &HttpResponse,
        expect_receipt: Option<&SendReceipt>,
        expect_error: Option<&ExpectedProviderError>,
    ) {
        let parse = |resp: &HttpResponse| {
            no_panic(|| self.connector.parse_send_response(self.ctx, message, resp))
        };
        let result = match parse(response) {
            Ok(result) => result,
            Err(panic) => return checker.check("parse_send_response", Err(panic)),
        };
        match (expect_receipt, expect_error) {
            (Some(expected), None) => {
                checker.check("parse_send_response", receipt_matches(&result, expected))
            }
            (None, Some(expected)) => checker.check(
                "error_classification",
                provider_error_matches(&result, expected),
            ),
            _ => {
                return checker.check(
                    "case",
                    Err("give exactly one of `expect_receipt`, `expect_provider_error`".into()),
                );
            }
        }

        checker.check(
            "server_errors_are_retryable",
            [500u16, 502, 503].iter().try_for_each(|&status| {
                let mut failed = response.clone();
                failed.status = status;
                match parse(&failed)? {
                    Err(e) if e.class.is_retryable() => Ok(()),
                    Err(e) => Err(format!("HTTP {status} classified as {}", e.class)),
                    Ok(_) => Err(format!("HTTP {status} read as a successful send")),
                }
            }),
        );
        checker.check(
            "garbage_responses_are_errors",
            [
                Vec::new(),
                noise(512),
                b"{\"sid\":".to_vec(),
                "[".repeat(100_000).into_bytes(),
            ]
            .into_iter()
            .try_for_each(|body| {
                let garbage = HttpResponse {
                    status: 200,
                    headers: response.headers.clone(),
                    body,
                };
                match parse(&garbage)? {
                    Err(_) => Ok(()),
                    Ok(receipt) => Err(format!("a garbage 200 body was read as {receipt:?}")),
                }
            }),
        );
    }
}

fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        format!("panicked: {message}")
    })
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value)
        .unwrap_or_else(|e| serde_json::Value::String(format!("<unserializable: {e}>")))
}

fn diff(what: &str, actual: serde_json::Value, expected: serde_json::Value) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{what} differ\n  actual:   {actual}\n  expected: {expected}"
        ))
    }
}

fn outcome_matches(
    result: &Result<WebhookOutcome, ConnectorError>,
    spec: &WebhookOutcomeSpec,
) -> Result<(), String> {
    let outcome = result
        .as_ref()
        .map_err(|e| format!("expected events, got error: {e}"))?;
    diff("events", to_json(&outcome.events), to_json(&spec.events))?;
    diff("replies", to_json(&outcome.reply), to_json(&spec.reply))
}

fn error_matches<T: std::fmt::Debug>(
    result: &Result<T, ConnectorError>,
    expected: &ExpectedError,
) -> Result<(), String> {
    let error = match result {
        Ok(value) => {
            return Err(format!(
                "expected a `{}` error, got {value:?}",
                expected.kind
            ));
        }
        Err(e) => e,
    };
    let kind = match error {
        ConnectorError::InvalidSignature { .. } => "invalid_signature",
        ConnectorError::Malformed { .. } => "malformed",
        ConnectorError::Unsupported { .. } => "unsupported",
        ConnectorError::Config { .. } => "config",
        _ => "other",
    };
    if kind != expected.kind {
        return Err(format!(
            "expected a `{}` error, got `{kind}`: {error}",
            expected.kind
        ));
    }
    match &expected.contains {
        Some(needle) if !error.to_string().contains(needle.as_str()) => {
            Err(format!("error `{error}` does not mention `{needle}`"))
        }
        _ => Ok(()),
    }
}

/// Compares requests; bodies by meaning where the content type says how (JSON values, form
/// pairs), so key order in a JSON object does not matter but form order does.
fn request_matches(
    result: &Result<HttpRequest, ConnectorError>,
    expected: &HttpRequest,
) -> Result<(), String> {
    let actual = result
        .as_ref()
        .map_err(|e| format!("expected a request, got error: {e}"))?;
    if actual.method != expected.method || actual.url != expected.url {
        return Err(format!(
            "request line differs\n  actual:   {} {}\n  expected: {} {}",
            actual.method, actual.url, expected.method, expected.url
        ));
    }
    diff(
        "headers",
        to_json(&actual.headers),
        to_json(&expected.headers),
    )?;
    let content_type = expected.header("content-type").unwrap_or_default();
    if content_type.contains("json") {
        let parse = |body: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string())
        };
        diff("JSON bodies", parse(&actual.body)?, parse(&expected.body)?)
    } else if content_type.contains("x-www-form-urlencoded") {
        let pairs = |body: &[u8]| {
            let pairs: Vec<(String, String)> = form_pairs(body);
            to_json(&pairs)
        };
        diff("form bodies", pairs(&actual.body), pairs(&expected.body))
    } else if actual.body == expected.body {
        Ok(())
    } else {
        Err(format!(
            "bodies differ\n  actual:   {}\n  expected: {}",
            String::from_utf8_lossy(&actual.body),
            String::from_utf8_lossy(&expected.body)
        ))
    }
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    WebhookRequest::new(switchboard_core::Method::Post, "")
        .with_body(body.to_vec())
        .form_pairs()
}

fn receipt_matches(
    result: &Result<SendReceipt, ProviderError>,
    expected: &SendReceipt,
) -> Result<(), String> {
    let receipt = result
        .as_ref()
        .map_err(|e| format!("expected a receipt, got error: {e}"))?;
    diff("receipts", to_json(receipt), to_json(expected))
}

fn provider_error_matches(
    result: &Result<SendReceipt, ProviderError>,
    expected: &ExpectedProviderError,
) -> Result<(), String> {
    let error = match result {
        Ok(receipt) => {
            return Err(format!(
                "expected a `{}` error, got {receipt:?}",
                expected.class
            ));
        }
        Err(e) => e,
    };
    if error.class != expected.class {
        return Err(format!(
            "expected class `{}`, got `{}`: {error}",
            expected.class, error.class
        ));
    }
    if expected.provider_code.is_some() && error.provider_code != expected.provider_code {
        return Err(format!(
            "expected provider code {:?}, got {:?}",
            expected.provider_code, error.provider_code
        ));
    }
    if let Some(secs) = expected.retry_after_secs
        && error.retry_after.map(|d| d.as_secs()) != Some(secs)
    {
        return Err(format!(
            "expected retry after {secs} s, got {:?}",
            error.retry_after
        ));
    }
    Ok(())
}
