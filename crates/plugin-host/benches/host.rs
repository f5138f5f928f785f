//! Criterion benchmarks of the plugin host, on the built-in WhatsApp connector's own code
//! running natively and as a plugin (`plugins/meta-whatsapp`):
//!
//! - `parse_webhook_2kb/{native,plugin}`: the same 2 KB batch webhook (4 messages, 3
//!   statuses); the plugin figure includes a fresh instance per call (target: ratio ≤ 2.0);
//!   `plugin_warm` repeats the call (and the host's decoding of its outcome) on one live
//!   instance, so `plugin - plugin_warm - instantiate` is what a fresh instance's first call
//!   adds; `plugin_warm_pool` is the full `Connector::parse_webhook` with
//!   [`InstancePolicy::warm`] (an instance reused across calls: opt-in);
//! - `outcome_json/{encode,decode,decode_fast}`: the outcome's JSON alone, natively (what the
//!   guest's serializing and the host's decoding cost, out of the plugin figure), `decode`
//!   with core's derive, `decode_fast` the host's tag-first path (`src/decode.rs`);
//! - `instantiate`: store + instance from `InstancePre` on the pooling allocator + drop
//!   (target ≤ 20 µs);
//! - `warm_call_route_empty`: one call into a live instance that does nothing (`route` of the
//!   hostile plugin on an empty request; target ≤ 2 µs);
//! - `load/{from_disk_cache,first_compile}`: loading the plugin from its directory with the
//!   compiled code cached on disk vs compiling it.
//!
//! `cargo bench -p switchboard-plugin-host --bench host -- --warm-up-time 1 --measurement-time 3`
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_core::{Connector, Method, WebhookRequest};
use switchboard_plugin_host::{HostConfig, InstancePolicy, PluginHost};
use switchboard_providers::meta::WhatsAppConnector;

fn benches(c: &mut Criterion) {
    let host = common::host();
    let plugin = common::load(&host, "meta-whatsapp");
    let warm = common::load(&host, "meta-whatsapp").with_instance_policy(InstancePolicy::warm());
    let hostile = common::load(&host, "hostile");
    let native = WhatsAppConnector::new();
    let (ctx, req) = (common::whatsapp_channel(), common::whatsapp_batch());
    eprintln!(
        "webhook body: {} bytes; pooling: {}",
        req.body.len(),
        host.is_pooling()
    );

    let mut group = c.benchmark_group("parse_webhook_2kb");
    group.bench_function("native", |b| {
        b.iter(|| native.parse_webhook(black_box(&ctx), black_box(&req)))
    });
    group.bench_function("plugin", |b| {
        b.iter(|| plugin.parse_webhook(black_box(&ctx), black_box(&req)))
    });
    group.bench_function("plugin_warm", |b| {
        b.iter_custom(|iters| {
            plugin
                .time_warm_parse_calls(&ctx, &req, iters)
                .expect("warm parse calls")
        })
    });
    group.bench_function("plugin_warm_pool", |b| {
        b.iter(|| warm.parse_webhook(black_box(&ctx), black_box(&req)))
    });
    group.finish();

    let outcome = native.parse_webhook(&ctx, &req).expect("parses");
    let json = serde_json::to_string(&outcome).expect("serializes");
    eprintln!("outcome JSON: {} bytes", json.len());
    let mut group = c.benchmark_group("outcome_json");
    group.bench_function("encode", |b| {
        b.iter(|| serde_json::to_string(black_box(&outcome)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| serde_json::from_str::<switchboard_core::WebhookOutcome>(black_box(&json)))
    });
    group.bench_function("decode_fast", |b| {
        b.iter(|| switchboard_plugin_host::__bench::decode_outcome(black_box(&json)))
    });
    group.finish();

    c.bench_function("instantiate", |b| b.iter(|| plugin.instantiate_only()));

    let empty = WebhookRequest::new(Method::Post, "https://gw/h");
    c.bench_function("warm_call_route_empty", |b| {
        b.iter_custom(|iters| {
            hostile
                .time_warm_route_calls(&empty, iters)
                .expect("warm calls")
        })
    });

    let dir = common::built("meta-whatsapp");
    let grants = common::grant_all(&dir);
    let cache = common::target_dir().join("bench-code-cache");
    let cached_host = PluginHost::new(HostConfig {
        cache_dir: Some(cache),
        ..HostConfig::default()
    })
    .expect("host");
    cached_host
        .load_dir(&dir, &grants)
        .expect("fills the cache");
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("from_disk_cache", |b| {
        b.iter(|| cached_host.load_dir(&dir, &grants).expect("loads"))
    });
    group.bench_function("first_compile", |b| {
        b.iter(|| host.load_dir(&dir, &grants).expect("loads"))
    });
    group.finish();
}

criterion_group!(host_benches, benches);
criterion_main!(host_benches);
