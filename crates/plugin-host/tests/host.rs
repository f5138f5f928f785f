//! The plugin host against real components built from `plugins/`: the built-in WhatsApp
//! connector as a plugin (conformance kit, same results as native), hostile plugins (loop,
//! memory bomb, huge output, panic, denied capabilities, unknown world), load checks, the code
//! cache, the circuit breaker and hot reload under concurrent calls.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{built, grant_all, host, host_with_deadline, load, whatsapp_batch, whatsapp_channel};
use switchboard_core::{
    Address, Channel, ChannelContext, Connector, ConnectorError, Content, Method, OutboundMessage,
    WebhookRequest,
};
use switchboard_plugin_host::{
    CallError, Capabilities, FailureCause, HostConfig, LoadError, Manifest, PluginHost,
    PluginRegistry, WasmConnector,
};
use switchboard_providers::meta::WhatsAppConnector;

fn scratch(name: &str) -> PathBuf {
    let dir = common::target_dir()
        .join("scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A copy of a built plugin with its manifest edited by `edit`.
fn copy_with(name: &str, tag: &str, edit: impl FnOnce(&mut Manifest)) -> PathBuf {
    let src = built(name);
    let dir = scratch(tag);
    std::fs::copy(src.join("plugin.wasm"), dir.join("plugin.wasm")).expect("copy wasm");
    let mut manifest = Manifest::read(&src).expect("manifest");
    edit(&mut manifest);
    std::fs::write(dir.join("plugin.toml"), manifest.to_toml()).expect("write manifest");
    dir
}

fn hostile_call(plugin: &WasmConnector, body: &str) -> Result<String, CallError<ConnectorError>> {
    let req = WebhookRequest::new(Method::Post, "https://gw.example.com/hook").with_body(body);
    plugin
        .call_parse_webhook(&ChannelContext::new("c1"), &req)
        .map(|outcome| outcome.reply.body)
}

fn plugin_cause<T: std::fmt::Debug>(r: Result<T, CallError<ConnectorError>>) -> FailureCause {
    match r {
        Err(CallError::Plugin(e)) => e.cause,
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}

#[test]
fn whatsapp_plugin_passes_the_conformance_kit_like_the_builtin() {
    let host = host();
    let plugin = load(&host, "meta-whatsapp");
    assert_eq!(plugin.info().id, "meta-whatsapp");
    let fixtures = common::workspace().join("fixtures/meta");
    let report = switchboard_conformance::check_fixtures(&plugin, &fixtures);
    eprintln!("meta-whatsapp as a plugin: {report}");
    assert!(report.cases >= 50, "{report}");
    let health = plugin.health();
    assert_eq!(health.traps, 0);
    // Every call's time is counted (the mean latency metric is busy / calls).
    assert!(health.calls > 0);
    assert!(health.busy > std::time::Duration::ZERO);
    let before = health.busy;
    let req = WebhookRequest::new(Method::Post, "https://gw.example.com/hook").with_body("{}");
    let _ = plugin.call_parse_webhook(&ChannelContext::new("c1"), &req);
    assert!(plugin.health().busy > before);
}

#[test]
fn plugin_and_native_give_the_same_outcome_and_request() {
    let host = host();
    let plugin = load(&host, "meta-whatsapp");
    let native = WhatsAppConnector::new();
    let (ctx, req) = (whatsapp_channel(), whatsapp_batch());
    let from_plugin = plugin.parse_webhook(&ctx, &req).expect("plugin parses");
    assert_eq!(
        from_plugin,
        native.parse_webhook(&ctx, &req).expect("native parses")
    );
    assert_eq!(from_plugin.events.len(), 7);

    let ctx = ctx.with_setting("graph_version", "v25.0");
    let msg = OutboundMessage::new(
        "k1",
        Address::phone(Channel::WhatsApp, "+14155550100"),
        Content::text("hello"),
    );
    assert_eq!(
        plugin.build_send(&ctx, &msg).expect("plugin builds"),
        native.build_send(&ctx, &msg).expect("native builds")
    );
    assert_eq!(
        plugin.webhook_auth(&ctx).expect("plugin auth"),
        native.webhook_auth(&ctx).expect("native auth")
    );
    assert_eq!(
        plugin.outbound_auth(&ctx).expect("plugin auth"),
        native.outbound_auth(&ctx).expect("native auth")
    );
}

#[test]
fn infinite_loop_is_interrupted_at_the_deadline() {
    let host = host_with_deadline(Duration::from_millis(50));
    let plugin = load(&host, "hostile");
    let start = Instant::now();
    let cause = plugin_cause(hostile_call(&plugin, "loop"));
    let took = start.elapsed();
    eprintln!("loop interrupted after {took:?} (deadline 50 ms, tick 5 ms)");
    assert_eq!(cause, FailureCause::Deadline(Duration::from_millis(50)));
    // Liveness, not speed: the call came back.
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The plugin still serves.
    assert_eq!(
        hostile_call(&plugin, "fine").expect("next call works"),
        "ok"
    );
}

#[test]
fn memory_bomb_is_trapped_at_the_cap() {
    let host = host();
    let plugin = load(&host, "hostile");
    let cause = plugin_cause(hostile_call(&plugin, "bomb"));
    assert_eq!(cause, FailureCause::MemoryCap(32 << 20));
    assert_eq!(
        cause.to_string(),
        "memory cap of 32 MiB exceeded",
        "the message says what happened"
    );
    assert_eq!(
        hostile_call(&plugin, "fine").expect("next call works"),
        "ok"
    );
}

#[test]
fn huge_output_is_refused() {
    let host = host();
    let plugin = load(&host, "hostile");
    match plugin_cause(hostile_call(&plugin, "huge")) {
        FailureCause::OutputTooLarge(size, cap) => {
            assert!(size > 5 << 20);
            assert_eq!(cap, 4 << 20);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn guest_panic_message_surfaces_with_plugin_and_version() {
    let host = host();
    let plugin = load(&host, "hostile");
    let req = WebhookRequest::new(Method::Post, "https://gw/h").with_body("panic");
    let err = plugin
        .parse_webhook(&ChannelContext::new("c1"), &req)
        .expect_err("panics");
    let text = err.to_string();
    assert!(text.contains("plugin hostile 0.1.0"), "{text}");
    assert!(text.contains("parse-webhook"), "{text}");
    assert!(
        text.contains("guest panicked at ")
            && text.contains("src/lib.rs:")
            && text.contains("hostile plugin panics on purpose"),
        "{text}"
    );
    assert_eq!(plugin.health().traps, 1);
    // Through the core trait: a `Config` error (the gateway answers 500, so the provider
    // redelivers) that says the plugin failed, not a setting, and what to do.
    match err {
        ConnectorError::Config { field, reason } => {
            assert_eq!(field, "plugin hostile 0.1.0");
            assert!(
                reason.starts_with(
                    "(the plugin failed, not a setting) parse-webhook: guest panicked at "
                ),
                "{reason}"
            );
            assert!(
                reason
                    .ends_with("; a bug in the plugin: report it to its author with this message"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let bomb = WebhookRequest::new(Method::Post, "https://gw/h").with_body("bomb");
    let text = plugin
        .parse_webhook(&ChannelContext::new("c1"), &bomb)
        .expect_err("bombs")
        .to_string();
    assert!(
        text.contains(
            "memory cap of 32 MiB exceeded; raise `limits.memory_mib` in its plugin.toml"
        ),
        "{text}"
    );
}

#[test]
fn input_cap_is_checked_before_entering_wasm() {
    let host = host();
    let plugin = load(&host, "hostile");
    let body = "a".repeat((1 << 20) + 1);
    match plugin_cause(hostile_call(&plugin, &body)) {
        FailureCause::InputTooLarge(size, cap) => assert!(size > cap && cap == 1 << 20),
        other => panic!("{other:?}"),
    }
    assert_eq!(plugin.health().traps, 0, "a refused input is not a trap");
}

#[test]
fn connector_errors_stay_data_and_imports_work() {
    let host = host();
    let plugin = load(&host, "hostile");
    match hostile_call(&plugin, "malformed") {
        Err(CallError::Connector(ConnectorError::Malformed { reason })) => {
            assert_eq!(reason, "the body says so");
        }
        other => panic!("{other:?}"),
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let seen: i64 = hostile_call(&plugin, "clock")
        .expect("clock")
        .parse()
        .expect("seconds");
    assert!((seen - now).abs() < 60, "{seen} vs {now}");
    let a = hostile_call(&plugin, "random").expect("random");
    let b = hostile_call(&plugin, "random").expect("random");
    assert_eq!(a.len(), 64);
    assert_ne!(a, b);
    assert_eq!(hostile_call(&plugin, "log").expect("log flood"), "logged");
    assert_eq!(plugin.health().traps, 0);
}

#[test]
fn denied_capabilities_are_errors_naming_them_and_nothing_is_built() {
    let host = host();
    let plugin = load(&host, "hostile");
    let msg = |key: &str| {
        OutboundMessage::new(
            key,
            Address::phone(Channel::Sms, "+14155550100"),
            Content::text("x"),
        )
    };
    let ctx = ChannelContext::new("c1");
    match plugin_cause(plugin.call_build_send(&ctx, &msg("evil"))) {
        FailureCause::Denied(what) => assert!(what.contains("`evil.example.com`"), "{what}"),
        other => panic!("{other:?}"),
    }
    let req = plugin.build_send(&ctx, &msg("fine")).expect("granted host");
    assert_eq!(req.url, "https://api.example.com/send");

    match plugin_cause(plugin.call_webhook_auth(&ChannelContext::new("greedy"))) {
        FailureCause::Denied(what) => assert!(what.contains("`someone_elses_secret`"), "{what}"),
        other => panic!("{other:?}"),
    }
    match plugin_cause(plugin.call_webhook_auth(&ChannelContext::new("open"))) {
        FailureCause::Denied(what) => assert!(what.contains("`none`"), "{what}"),
        other => panic!("{other:?}"),
    }

    // Declared but not granted: the operator's grant narrows what the plugin gets.
    let dir = built("hostile");
    let narrow = host
        .load_dir(&dir, &Capabilities::default())
        .expect("loads with no grants");
    assert!(narrow.info().egress_hosts.is_empty());
    assert!(matches!(
        plugin_cause(narrow.call_build_send(&ctx, &msg("fine"))),
        FailureCause::Denied(_)
    ));
    assert!(matches!(
        plugin_cause(narrow.call_outbound_auth(&ctx)),
        FailureCause::Denied(what) if what.contains("`token`")
    ));
}

#[test]
fn unknown_world_version_is_refused_at_load() {
    let host = host();
    let dir = built("future-world");
    let err = host
        .load_dir(&dir, &Capabilities::default())
        .expect_err("refused");
    assert!(matches!(err, LoadError::UnsupportedWorld { ref world, .. } if world == "9.0.0"));
    assert!(
        err.to_string().contains("switchboard:connector@9.0.0"),
        "{err}"
    );

    // A manifest that lies about the world does not help: the component is inspected.
    let lying = copy_with("future-world", "lying-world", |m| m.world = "0.1.0".into());
    let err = host
        .load_dir(&lying, &Capabilities::default())
        .expect_err("refused");
    assert!(
        matches!(err, LoadError::UnsupportedWorld { ref world, .. } if world == "9.0.0"),
        "{err}"
    );
}

#[test]
fn sha256_mismatch_and_wrong_id_are_refused() {
    let host = host();
    let tampered = copy_with("hostile", "tampered", |m| {
        m.sha256 = "0".repeat(64);
    });
    let err = host
        .load_dir(&tampered, &Capabilities::default())
        .expect_err("refused");
    assert!(matches!(err, LoadError::Sha256Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("sha256"), "{err}");

    let impostor = copy_with("hostile", "impostor", |m| m.id = "twilio".into());
    let err = host
        .load_dir(&impostor, &Capabilities::default())
        .expect_err("refused");
    assert!(
        err.to_string().contains("info reports id `hostile`"),
        "{err}"
    );
}

#[test]
fn missing_export_is_refused() {
    // A component of the right package that exports nothing.
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str(
            "empty.wit",
            "package switchboard:connector@0.1.0;\ninterface log { log: func(message: string); }\nworld connector { import log; }",
        )
        .expect("wit");
    let world = resolve.select_world(&[pkg], None).expect("world");
    // An empty core module: it implements nothing, so the component exports nothing.
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed");
    let component = switchboard_plugin_host::build::componentize(&module).expect("component");
    let dir = scratch("no-export");
    switchboard_plugin_host::build::write_plugin(
        Path::new("plugin.toml"),
        "id = \"empty\"\nversion = \"0.1.0\"\nworld = \"0.1.0\"\nwebhook_auth = \"none\"\n",
        &component,
        &dir,
    )
    .expect("written");
    let err = host()
        .load_dir(&dir, &Capabilities::default())
        .expect_err("refused");
    assert!(matches!(err, LoadError::MissingExport { .. }), "{err}");
    assert!(
        err.to_string().contains("switchboard:connector/plugin"),
        "{err}"
    );
}

#[test]
fn other_plugins_keep_serving_while_one_misbehaves() {
    let host = host();
    let meta = Arc::new(load(&host, "meta-whatsapp"));
    let hostile = Arc::new(load(&host, "hostile"));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (meta, stop, ok) = (meta.clone(), stop.clone(), ok.clone());
            std::thread::spawn(move || {
                let (ctx, req) = (whatsapp_channel(), whatsapp_batch());
                while !stop.load(Ordering::Relaxed) {
                    meta.parse_webhook(&ctx, &req).expect("meta keeps working");
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for _ in 0..2 {
        for body in ["loop", "bomb", "panic", "huge", "fine"] {
            let _ = hostile_call(&hostile, body);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("no worker panicked");
    }
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert_eq!(meta.health().traps, 0);
    // loop, bomb and panic trap every time; `huge` may also run out of its deadline on a
    // busy machine.
    assert!(hostile.health().traps >= 6, "{:?}", hostile.health());
}

#[test]
fn circuit_opens_after_repeated_traps_and_recovers() {
    let host = PluginHost::new(HostConfig {
        breaker_traps: 3,
        breaker_cooldown: Duration::from_millis(300),
        ..HostConfig::default()
    })
    .expect("host");
    let plugin = load(&host, "hostile");
    for _ in 0..3 {
        assert!(matches!(
            plugin_cause(hostile_call(&plugin, "panic")),
            FailureCause::Panic(_)
        ));
    }
    assert!(plugin.health().circuit_open);
    assert!(matches!(
        plugin_cause(hostile_call(&plugin, "fine")),
        FailureCause::CircuitOpen { traps: 3, .. }
    ));
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(hostile_call(&plugin, "fine").expect("trial call"), "ok");
    assert!(!plugin.health().circuit_open);
    assert_eq!(plugin.health().consecutive_traps, 0);
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let cache = scratch("code-cache");
    let config = HostConfig {
        cache_dir: Some(cache.clone()),
        ..HostConfig::default()
    };
    let dir = built("hostile");
    let first = PluginHost::new(config.clone())
        .expect("host")
        .load_dir(&dir, &grant_all(&dir))
        .expect("first load compiles");
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1);
    let manifest = Manifest::read(&dir).expect("manifest");
    assert!(
        cached[0]
            .file_name()
            .to_string_lossy()
            .starts_with(&manifest.sha256)
    );
    // A new host (a restart) loads from the cache.
    let second = PluginHost::new(config)
        .expect("host")
        .load_dir(&dir, &grant_all(&dir))
        .expect("second load from cache");
    assert_eq!(hostile_call(&first, "x").expect("works"), "ok");
    assert_eq!(hostile_call(&second, "x").expect("works"), "ok");
}

#[test]
fn reload_rollback_and_unload_while_serving() {
    let host = host();
    let registry = Arc::new(PluginRegistry::new());
    let v1 = built("meta-whatsapp");
    let v2 = copy_with("meta-whatsapp", "meta-v2", |m| m.version = "0.2.0".into());
    registry
        .load_dir(&host, &v1, &grant_all(&v1))
        .expect("v1 loads");

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (registry, stop) = (registry.clone(), stop.clone());
            std::thread::spawn(move || {
                let (ctx, req) = (whatsapp_channel(), whatsapp_batch());
                let mut versions = std::collections::BTreeSet::new();
                let mut calls = 0;
                while !stop.load(Ordering::Relaxed) {
                    let Some(plugin) = registry.get("meta-whatsapp") else {
                        break;
                    };
                    let outcome = plugin.parse_webhook(&ctx, &req).expect("no call fails");
                    assert_eq!(outcome.events.len(), 7);
                    versions.insert(plugin.info().version.clone());
                    calls += 1;
                }
                (calls, versions)
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(100));
    let in_flight = registry.get("meta-whatsapp").expect("v1");
    registry
        .load_dir(&host, &v2, &grant_all(&v2))
        .expect("v2 loads");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        registry.loaded(),
        vec![("meta-whatsapp".into(), "0.2.0".into(), Some("0.1.0".into()))]
    );
    let back = registry.rollback("meta-whatsapp").expect("rollback");
    assert_eq!(back.info().version, "0.1.0");
    std::thread::sleep(Duration::from_millis(100));
    registry.rollback("meta-whatsapp").expect("forward again");
    std::thread::sleep(Duration::from_millis(100));
    // A refused load changes nothing.
    let bad = copy_with("meta-whatsapp", "meta-bad", |m| m.sha256 = "1".repeat(64));
    assert!(registry.load_dir(&host, &bad, &grant_all(&bad)).is_err());
    assert_eq!(
        registry
            .get("meta-whatsapp")
            .expect("still there")
            .info()
            .version,
        "0.2.0"
    );
    registry.unload("meta-whatsapp").expect("unload");
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for w in workers {
        let (calls, versions) = w.join().expect("no worker panicked");
        assert!(calls > 0);
        seen.extend(versions);
    }
    assert_eq!(seen, ["0.1.0".to_string(), "0.2.0".to_string()].into());
    assert!(registry.get("meta-whatsapp").is_none());
    assert!(matches!(
        registry.unload("meta-whatsapp"),
        Err(LoadError::NotLoaded(_))
    ));
    // A handle taken before the swaps still works: calls finish on their version.
    assert_eq!(in_flight.info().version, "0.1.0");
    in_flight
        .parse_webhook(&whatsapp_channel(), &whatsapp_batch())
        .expect("old version still serves its holder");
}
