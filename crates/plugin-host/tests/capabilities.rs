//! World 0.2.0's gated imports (`hmac` by secret name, `http` through the host) against real
//! components and a real loopback HTTP server; the frozen 0.1.0 world still served next to
//! it; the opt-in warm instance pool (same outputs as fresh instances, recovery after traps,
//! retirement).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{built, grant_all, host, load, whatsapp_batch, whatsapp_channel};
use hmac::{Hmac, Mac};
use switchboard_core::{
    ChannelContext, Connector, ConnectorError, HttpRequest, HttpResponse, Method, Secret,
    SecretName, WebhookRequest,
};
use switchboard_plugin_host::{
    CallError, Capabilities, FailureCause, HttpCall, HttpFailure, InstancePolicy, PluginHttp,
    PluginSecrets, Services, WasmConnector,
};

/// Secrets per channel; counts lookups so a test can assert a denied name was never asked.
#[derive(Default)]
struct TestSecrets {
    lookups: AtomicUsize,
}

impl PluginSecrets for TestSecrets {
    fn secret(&self, channel_id: &str, name: &SecretName) -> Option<Secret> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        match (channel_id, name.as_str()) {
            ("c1", "token") => Some(Secret::new("key")),
            ("c1", "someone_elses_secret") => Some(Secret::new("must never be used")),
            _ => None,
        }
    }
}

/// A loopback HTTP server that records every request line it receives.
struct Loopback {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Loopback {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                record.lock().expect("lock").push(line);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            }
        });
        Loopback { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

/// A minimal blocking HTTP/1.1 client standing in for the gateway's transport; counts what
/// it was asked to send.
#[derive(Default)]
struct TestHttp {
    sent: AtomicUsize,
    calls: Mutex<Vec<HttpCall>>,
}

impl PluginHttp for TestHttp {
    fn send(&self, call: &HttpCall, req: HttpRequest) -> Result<HttpResponse, HttpFailure> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.calls.lock().expect("lock").push(call.clone());
        let url = url::Url::parse(&req.url).map_err(|e| HttpFailure::NotSent(e.to_string()))?;
        let addr = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port().unwrap_or(80)
        );
        let mut stream =
            TcpStream::connect(addr).map_err(|e| HttpFailure::NotSent(e.to_string()))?;
        stream
            .set_read_timeout(Some(call.timeout))
            .map_err(|e| HttpFailure::NotSent(e.to_string()))?;
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            url.path(),
            url.host_str().unwrap_or_default()
        )
        .map_err(|e| HttpFailure::Failed(e.to_string()))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|e| HttpFailure::Failed(e.to_string()))?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(HttpResponse::new(status, body.as_bytes().to_vec()))
    }
}

fn call(
    plugin: &WasmConnector,
    channel: &str,
    body: &str,
) -> Result<String, CallError<ConnectorError>> {
    let req = WebhookRequest::new(Method::Post, "https://gw.example.com/hook").with_body(body);
    plugin
        .call_parse_webhook(&ChannelContext::new(channel), &req)
        .map(|outcome| outcome.reply.body)
}

fn denied(r: Result<String, CallError<ConnectorError>>) -> String {
    match r {
        Err(CallError::Plugin(e)) => match &e.cause {
            FailureCause::Denied(what) => {
                assert!(
                    e.to_string()
                        .starts_with("plugin hostile 0.1.0: parse-webhook: denied: "),
                    "{e}"
                );
                what.clone()
            }
            other => panic!("expected a denial, got {other:?}"),
        },
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn hostile_with(grants: &Capabilities, services: Services) -> WasmConnector {
    host()
        .load_dir(&built("hostile"), grants)
        .expect("hostile loads")
        .with_services(services)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn hmac_with_a_granted_secret_equals_the_native_mac() {
    let secrets = Arc::new(TestSecrets::default());
    let grants = grant_all(&built("hostile"));
    let plugin = hostile_with(
        &grants,
        Services {
            secrets: Some(secrets.clone()),
            ..Services::default()
        },
    );
    let data = "The quick brown fox jumps over the lazy dog";
    let from_plugin = call(&plugin, "c1", &format!("hmac:token:{data}")).expect("granted hmac");
    let mut native = Hmac::<sha2::Sha256>::new_from_slice(b"key").expect("key");
    native.update(data.as_bytes());
    assert_eq!(from_plugin, hex(&native.finalize().into_bytes()));
    // The well-known vector for this key and text.
    assert_eq!(
        from_plugin,
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    assert_eq!(secrets.lookups.load(Ordering::SeqCst), 1);
    assert_eq!(plugin.health().traps, 0);
}

#[test]
fn hmac_with_an_ungranted_secret_is_denied_and_the_secret_never_read() {
    let secrets = Arc::new(TestSecrets::default());
    let services = Services {
        secrets: Some(secrets.clone()),
        ..Services::default()
    };
    let all = grant_all(&built("hostile"));
    let plugin = hostile_with(&all, services.clone());
    // Not in the manifest (the store would have a value for it).
    let what = denied(call(&plugin, "c1", "hmac:someone_elses_secret:x"));
    assert_eq!(
        what,
        "hmac: secret `someone_elses_secret` is not declared in the plugin's manifest"
    );
    // Declared but not granted.
    let narrow = hostile_with(&Capabilities::default(), services);
    let what = denied(call(&narrow, "c1", "hmac:token:x"));
    assert_eq!(
        what,
        "hmac: secret `token` is declared but not granted by the operator"
    );
    assert_eq!(
        secrets.lookups.load(Ordering::SeqCst),
        0,
        "no secret was looked up"
    );
    assert_eq!(
        plugin.health().traps + narrow.health().traps,
        0,
        "a denial is not a trap"
    );
    // Granted, but this channel has no such secret: the connector's error, not a denial.
    match call(&plugin, "c2", "hmac:token:x") {
        Err(CallError::Connector(ConnectorError::Config { field, reason })) => {
            assert_eq!(field, "host capability");
            assert!(
                reason.contains("channel `c2` does not set secret `token`"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn denied_http_sends_nothing_and_names_the_capability() {
    let server = Loopback::start();
    let client = Arc::new(TestHttp::default());
    let services = Services {
        http: Some(client.clone()),
        ..Services::default()
    };
    let all = grant_all(&built("hostile"));
    let url = server.url("/token");

    // `http` declared but not granted.
    let no_http = hostile_with(
        &Capabilities {
            http: false,
            ..all.clone()
        },
        services.clone(),
    );
    let what = denied(call(&no_http, "c1", &format!("http:{url}")));
    assert_eq!(
        what,
        "http: capability `http` is declared but not granted by the operator"
    );

    // `http` granted, the host not.
    let no_host = hostile_with(
        &Capabilities {
            egress_hosts: vec!["api.example.com".into()],
            ..all.clone()
        },
        services.clone(),
    );
    let what = denied(call(&no_host, "c1", &format!("http:{url}")));
    assert_eq!(
        what,
        "http: egress host `127.0.0.1` is declared but not granted by the operator"
    );
    // A plugin that swallows the refusal still fails the call.
    let what = denied(call(&no_host, "c1", &format!("http-swallow:{url}")));
    assert!(what.contains("`127.0.0.1`"), "{what}");
    // A host nobody declared.
    let what = denied(call(&no_host, "c1", "http:https://evil.example.com/x"));
    assert_eq!(
        what,
        "http: egress host `evil.example.com` is not declared in the plugin's manifest"
    );

    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        client.sent.load(Ordering::SeqCst),
        0,
        "the client was never asked"
    );
    assert!(
        server.seen().is_empty(),
        "nothing reached the server: {:?}",
        server.seen()
    );

    // Granted: the request arrives, with the call's context and remaining deadline.
    let granted = hostile_with(&all, services);
    assert_eq!(
        call(&granted, "c1", &format!("http:{url}")).expect("granted http"),
        "200 hello"
    );
    assert_eq!(server.seen(), vec!["GET /token HTTP/1.1".to_string()]);
    let calls = client.calls.lock().expect("lock").clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].plugin, "hostile");
    assert_eq!(calls[0].channel_id.as_deref(), Some("c1"));
    assert!(!calls[0].channel_auth);
    assert!(calls[0].timeout > Duration::ZERO && calls[0].timeout <= Duration::from_secs(1));
}

#[test]
fn closures_serve_as_secret_store_and_http_client() {
    let secrets = |channel: &str, name: &SecretName| {
        (channel == "c1" && name.as_str() == "token").then(|| Secret::new("key"))
    };
    let http = |call: &HttpCall, req: HttpRequest| -> Result<HttpResponse, HttpFailure> {
        Ok(HttpResponse::new(
            203,
            format!("{} {}", call.channel_id.as_deref().unwrap_or("-"), req.url),
        ))
    };
    let plugin = hostile_with(
        &grant_all(&built("hostile")),
        Services {
            secrets: Some(Arc::new(secrets)),
            http: Some(Arc::new(http)),
        },
    );
    assert_eq!(
        call(
            &plugin,
            "c1",
            "hmac:token:The quick brown fox jumps over the lazy dog"
        )
        .expect("hmac"),
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    assert_eq!(
        call(&plugin, "c1", "http:http://127.0.0.1/x").expect("http"),
        "203 c1 http://127.0.0.1/x"
    );
}

#[test]
fn granted_imports_without_services_are_unavailable_not_denied() {
    let plugin = hostile_with(&grant_all(&built("hostile")), Services::default());
    for body in ["hmac:token:x", "http:http://127.0.0.1:9/x"] {
        match call(&plugin, "c1", body) {
            Err(CallError::Connector(ConnectorError::Config { reason, .. })) => {
                assert!(reason.starts_with("unavailable: "), "{reason}");
                assert!(reason.contains("configured"), "{reason}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn a_plugin_built_for_world_0_1_0_still_loads_and_serves() {
    let host = host();
    let legacy = load(&host, "legacy-v01");
    assert_eq!(legacy.world(), "0.1.0");
    let req = WebhookRequest::new(Method::Post, "https://gw/h").with_body("hi \"there\"");
    let outcome = legacy
        .parse_webhook(&ChannelContext::new("c1"), &req)
        .expect("parses");
    assert_eq!(outcome.reply.body, "hi \"there\"");
    // Side by side with a 0.2.0 plugin on the same host.
    let current = load(&host, "hostile");
    assert_eq!(current.world(), "0.2.0");
    assert_eq!(call(&current, "c1", "fine").expect("works"), "ok");
}

#[test]
fn warm_pool_gives_the_same_outputs_as_fresh_instances() {
    let host = host();
    let fresh = load(&host, "meta-whatsapp");
    let warm = load(&host, "meta-whatsapp").with_instance_policy(InstancePolicy::warm());
    let (ctx, req) = (whatsapp_channel(), whatsapp_batch());
    let expected = fresh.parse_webhook(&ctx, &req).expect("fresh parses");
    for _ in 0..20 {
        assert_eq!(
            warm.parse_webhook(&ctx, &req).expect("warm parses"),
            expected
        );
    }
    // And the whole conformance kit, on reused instances.
    let report =
        switchboard_conformance::check_fixtures(&warm, &common::workspace().join("fixtures/meta"));
    assert!(report.cases >= 50, "{report}");
    assert_eq!(warm.health().traps, 0);
}

#[test]
fn warm_pool_reuses_instances_retires_them_and_recovers_after_traps() {
    let host = common::host_with_deadline(Duration::from_millis(200));
    let dir = built("hostile");
    let fresh = host.load_dir(&dir, &grant_all(&dir)).expect("loads");
    for _ in 0..3 {
        assert_eq!(
            call(&fresh, "c1", "count").expect("count"),
            "1",
            "fresh: nothing carries over"
        );
    }

    let warm = host
        .load_dir(&dir, &grant_all(&dir))
        .expect("loads")
        .with_instance_policy(InstancePolicy::Warm {
            max_idle: 1,
            max_calls: 4,
        });
    let counts: Vec<String> = (0..6)
        .map(|_| call(&warm, "c1", "count").expect("count"))
        .collect();
    // Calls 1–4 on one instance (retired after its 4th call), then a new one.
    assert_eq!(counts, ["1", "2", "3", "4", "1", "2"]);

    // A trap drops the instance: the next call starts fresh and works.
    assert!(matches!(
        call(&warm, "c1", "panic"),
        Err(CallError::Plugin(e)) if matches!(e.cause, FailureCause::Panic(_))
    ));
    assert_eq!(call(&warm, "c1", "count").expect("after a panic"), "1");
    assert!(matches!(
        call(&warm, "c1", "loop"),
        Err(CallError::Plugin(e)) if matches!(e.cause, FailureCause::Deadline(_))
    ));
    assert_eq!(call(&warm, "c1", "count").expect("after a deadline"), "1");
    assert!(matches!(
        call(&warm, "c1", "bomb"),
        Err(CallError::Plugin(e)) if matches!(e.cause, FailureCause::MemoryCap(_))
    ));
    assert_eq!(
        call(&warm, "c1", "count").expect("after the memory cap"),
        "1"
    );
    assert_eq!(call(&warm, "c1", "count").expect("reused again"), "2");
    // A denial is not a trap: the instance is kept.
    let _ = call(&warm, "c1", "hmac:someone_elses_secret:x");
    assert_eq!(
        call(&warm, "c1", "count").expect("kept after a denial"),
        "3"
    );
}
