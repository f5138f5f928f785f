//! The engine, shared by every plugin: configuration, epoch ticker, host imports, code cache,
//! and loading a plugin directory into a [`WasmConnector`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{self, Pre};
use crate::connector::WasmConnector;
use crate::imports::HostState;
use crate::manifest::{Capabilities, Manifest};
use crate::{LoadError, SUPPORTED_WORLDS};

/// The host's settings. Defaults suit a gateway: 50 ms per call, 32 MiB of memory, 1 MiB of
/// input, 5 ms epoch ticks, pooling for 512 concurrent instances.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// How often the epoch advances; deadlines are rounded up to whole ticks plus one, so a
    /// runaway call is stopped within its deadline plus one tick.
    pub epoch_tick: Duration,
    /// The per-call deadline when the manifest does not ask for one.
    pub default_deadline: Duration,
    /// The longest deadline a manifest may ask for.
    pub max_deadline: Duration,
    /// The memory cap when the manifest does not ask for one, bytes.
    pub default_memory: usize,
    /// The largest memory cap a manifest may ask for, bytes (also the pool's slot size).
    pub max_memory: usize,
    /// The input cap when the manifest does not ask for one, bytes.
    pub default_max_input: usize,
    /// The largest output the host accepts from one call, bytes.
    pub max_output: usize,
    /// Use the pooling allocator (falls back to on-demand when the machine refuses it).
    pub pooling: bool,
    /// Concurrent instances the pool holds.
    pub pool_instances: u32,
    /// Where compiled code is cached (`<sha256>-<engine hash>.cwasm`); `None`: no cache.
    /// Must be writable by this process only: cached code is trusted.
    pub cache_dir: Option<PathBuf>,
    /// Consecutive traps that open a plugin's circuit.
    pub breaker_traps: u32,
    /// How long an open circuit refuses calls before one trial call.
    pub breaker_cooldown: Duration,
    /// Log lines one call may emit; more are dropped.
    pub max_log_lines: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            epoch_tick: Duration::from_millis(5),
            default_deadline: Duration::from_millis(50),
            max_deadline: Duration::from_secs(5),
            default_memory: 32 << 20,
            max_memory: 64 << 20,
            default_max_input: 1 << 20,
            max_output: 4 << 20,
            pooling: true,
            pool_instances: 512,
            cache_dir: None,
            breaker_traps: 5,
            breaker_cooldown: Duration::from_secs(30),
            max_log_lines: 64,
        }
    }
}

/// The limits one plugin runs under, after clamping its manifest to the host's ceilings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Per-call deadline.
    pub deadline: Duration,
    /// Deadline in epoch ticks (rounded up, plus one).
    pub deadline_ticks: u64,
    /// Memory cap, bytes.
    pub memory: usize,
    /// Input cap, bytes.
    pub max_input: usize,
    /// Output cap, bytes.
    pub max_output: usize,
}

struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: HostConfig,
    pub(crate) pooling: bool,
    _ticker: Ticker,
}

/// The plugin host: one wasmtime engine (compiled code, pooling allocator, epoch ticker) and
/// the host imports, shared by every plugin it loads. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    pub(crate) inner: Arc<HostInner>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.inner.config)
            .field("pooling", &self.inner.pooling)
            .finish()
    }
}

/// How a fresh instance's memory is recycled when its store is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pooling {
    /// On-demand allocation: every instance maps fresh memory.
    Off,
    /// Pooling; a freed memory slot is reset with `madvise` (the next instance page-faults
    /// every page it touches back in).
    Pooled,
    /// Pooling with `PAGEMAP_SCAN` (Linux ≥ 6.7): only the pages the guest dirtied are reset
    /// to their initial contents (zero, or the module's data image) by `memcpy`, up to
    /// [`KEEP_RESIDENT`] bytes, so they stay mapped and the next instance does not fault them
    /// in. The next instance still sees exactly the initial memory: nothing carries over.
    PooledKeepResident,
}

/// Dirty bytes per memory (and per table) reset in place instead of decommitted, when the
/// kernel can tell which pages are dirty. A connector call dirties tens of KiB.
const KEEP_RESIDENT: usize = 1 << 20;

fn engine_config(config: &HostConfig, pooling: Pooling) -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true);
    // A synchronous world: no component-model async machinery (3–6x cheaper calls; the
    // `component-model-async` cargo feature is off too).
    c.concurrency_support(false);
    if pooling != Pooling::Off {
        let n = config.pool_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        // A Rust component made by wit-component instantiates 3 core modules with 2 tables.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .max_core_instances_per_component(8)
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_memory_size(config.max_memory);
        if pooling == Pooling::PooledKeepResident {
            // `Yes`: the engine refuses to start when the kernel lacks the ioctl (we then fall
            // back to `Pooled`): without it `keep_resident` would `memset` the first bytes of
            // every memory whether dirtied or not.
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT);
        }
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

impl PluginHost {
    /// A host with `config`. Starts the epoch ticker thread (stopped when the last clone of
    /// the host and of every connector it loaded is dropped).
    pub fn new(config: HostConfig) -> Result<Self, LoadError> {
        let invalid = |reason: String| LoadError::Invalid {
            id: "(host)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reason,
        };
        let (engine, pooling) = if config.pooling {
            let mut engine = None;
            for mode in [Pooling::PooledKeepResident, Pooling::Pooled] {
                match Engine::new(&engine_config(&config, mode)) {
                    Ok(e) => {
                        engine = Some((e, true));
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, ?mode, "pooling mode unavailable");
                    }
                }
            }
            match engine {
                Some(engine) => engine,
                None => {
                    tracing::warn!("pooling allocator unavailable; using on-demand allocation");
                    let engine = Engine::new(&engine_config(&config, Pooling::Off))
                        .map_err(|e| invalid(format!("engine: {e}")))?;
                    (engine, false)
                }
            }
        } else {
            (
                Engine::new(&engine_config(&config, Pooling::Off))
                    .map_err(|e| invalid(format!("engine: {e}")))?,
                false,
            )
        };

        let mut linker = Linker::new(&engine);
        bindings::add_to_linker(&mut linker).map_err(|e| invalid(format!("linker: {e}")))?;

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.clone();
            let stop = stop.clone();
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("plugin-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| invalid(format!("epoch ticker thread: {e}")))?
        };

        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                config,
                pooling,
                _ticker: Ticker {
                    stop,
                    thread: Some(thread),
                },
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Whether the pooling allocator is in use (it can be refused by the machine).
    pub fn is_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Loads the plugin in `dir` (its `plugin.toml` and component) with the operator's
    /// `grants`. Checks the manifest, the component's SHA-256, its world version, imports
    /// and exports; compiles it (or loads it from the code cache); builds its `InstancePre`;
    /// calls `info` and checks it against the manifest. Any failure refuses the load.
    pub fn load_dir(&self, dir: &Path, grants: &Capabilities) -> Result<WasmConnector, LoadError> {
        let manifest_path = dir.join(crate::manifest::MANIFEST_FILE);
        let manifest = Manifest::read(dir).map_err(|reason| LoadError::Manifest {
            path: manifest_path.clone(),
            reason,
        })?;
        let file = dir.join(&manifest.component);
        let bytes = std::fs::read(&file).map_err(|source| LoadError::Io {
            path: file.clone(),
            source,
        })?;
        self.load(manifest, &file, &bytes, grants)
    }

    /// Loads a plugin from its manifest and component bytes (`file` only names it in errors).
    pub fn load(
        &self,
        manifest: Manifest,
        file: &Path,
        bytes: &[u8],
        grants: &Capabilities,
    ) -> Result<WasmConnector, LoadError> {
        let id = manifest.id.clone();
        let version = manifest.version.clone();
        let invalid = |reason: String| LoadError::Invalid {
            id: id.clone(),
            version: version.clone(),
            reason,
        };

        let actual = hex::encode(Sha256::digest(bytes));
        if !actual.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(LoadError::Sha256Mismatch {
                id,
                version,
                file: file.to_owned(),
                expected: manifest.sha256.clone(),
                actual,
            });
        }
        let unsupported = |world: &str| LoadError::UnsupportedWorld {
            id: id.clone(),
            version: version.clone(),
            world: world.to_owned(),
            supported: SUPPORTED_WORLDS.join(", "),
        };
        if !crate::world_supported(&manifest.world) {
            return Err(unsupported(&manifest.world));
        }
        // Before compiling: what the component says it is.
        check_world(&manifest, bytes)?;

        let component = self.compile(&actual, bytes).map_err(invalid)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("linking: {e:#}")))?;
        let pre = Pre::new(&manifest.world, pre).map_err(|e| LoadError::MissingExport {
            id: id.clone(),
            version: version.clone(),
            what: format!("{e:#}"),
        })?;
        WasmConnector::new(self.inner.clone(), manifest, pre, grants)
    }

    /// Compiles a component, through the code cache when there is one.
    fn compile(&self, sha256: &str, bytes: &[u8]) -> Result<Component, String> {
        let engine = &self.inner.engine;
        let Some(dir) = &self.inner.config.cache_dir else {
            return Component::new(engine, bytes).map_err(|e| format!("compiling: {e:#}"));
        };
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let path = dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()));
        if path.is_file() {
            // SAFETY: the file is a `.cwasm` this host wrote with `precompile_component` for
            // an engine with the same compatibility hash (it is in the file name), into the
            // operator's cache directory, which only this process may write
            // (`HostConfig::cache_dir`). The bytes it was compiled from are the ones whose
            // SHA-256 the manifest pins, also in the file name.
            #[allow(unsafe_code, reason = "loading our own precompiled code, see SAFETY")]
            let cached = unsafe { Component::deserialize_file(engine, &path) };
            match cached {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached plugin code")
                }
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(|e| format!("compiling: {e:#}"))?;
        let write = std::fs::create_dir_all(dir).and_then(|()| {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &compiled)?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = write {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled plugin code");
        }
        // SAFETY: `compiled` was produced by `precompile_component` on this very engine just
        // above.
        #[allow(unsafe_code, reason = "deserializing code this engine just compiled")]
        let component = unsafe { Component::deserialize(engine, &compiled) };
        component.map_err(|e| format!("loading compiled code: {e:#}"))
    }
}

/// Reads the component's world (without compiling it) and checks its version, exports and
/// imports against what this host supports.
fn check_world(manifest: &Manifest, bytes: &[u8]) -> Result<(), LoadError> {
    let id = &manifest.id;
    let version = &manifest.version;
    let invalid = |reason: String| LoadError::Invalid {
        id: id.clone(),
        version: version.clone(),
        reason,
    };
    let decoded = wit_component::decode(bytes)
        .map_err(|e| invalid(format!("not a WebAssembly component: {e:#}")))?;
    let resolve = decoded.resolve();
    let world = &resolve.worlds[decoded.package_world()?];
    let interface_name = |key: &wit_parser::WorldKey| resolve.name_world_key(key);

    let mut plugin_export = None;
    for key in world.exports.keys() {
        let name = interface_name(key);
        if let Some(rest) = name.strip_prefix("switchboard:connector/plugin") {
            plugin_export = Some(rest.trim_start_matches('@').to_owned());
        }
    }
    let Some(world_version) = plugin_export else {
        return Err(LoadError::MissingExport {
            id: id.clone(),
            version: version.clone(),
            what: format!(
                "the component does not export switchboard:connector/plugin@{}",
                manifest.world
            ),
        });
    };
    if !crate::world_supported(&world_version) {
        return Err(LoadError::UnsupportedWorld {
            id: id.clone(),
            version: version.clone(),
            world: world_version,
            supported: SUPPORTED_WORLDS.join(", "),
        });
    }
    if world_version != manifest.world {
        return Err(invalid(format!(
            "the component exports switchboard:connector/plugin@{world_version} but the manifest says world {}",
            manifest.world
        )));
    }
    // 0.2.0 added the gated imports; 0.1.0 has only the always-available ones.
    let imports: &[&str] = if world_version == "0.1.0" {
        &["log", "clock", "random", "types"]
    } else {
        &["log", "clock", "random", "types", "http", "hmac"]
    };
    for key in world.imports.keys() {
        let name = interface_name(key);
        let known = imports.iter().any(|i| {
            name.strip_prefix("switchboard:connector/")
                .and_then(|rest| rest.strip_prefix(i))
                .is_some_and(|v| v.is_empty() || v.starts_with('@'))
        });
        if !known {
            return Err(LoadError::UnknownImport {
                id: id.clone(),
                version: version.clone(),
                import: name,
            });
        }
    }
    Ok(())
}

trait PackageWorld {
    fn package_world(&self) -> Result<wit_parser::WorldId, LoadError>;
}

impl PackageWorld for wit_component::DecodedWasm {
    fn package_world(&self) -> Result<wit_parser::WorldId, LoadError> {
        match self {
            wit_component::DecodedWasm::Component(_, world) => Ok(*world),
            wit_component::DecodedWasm::WitPackage(..) => Err(LoadError::Invalid {
                id: "(unknown)".into(),
                version: "(unknown)".into(),
                reason: "a WIT package, not a component".into(),
            }),
        }
    }
}
