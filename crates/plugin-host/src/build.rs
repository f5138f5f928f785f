//! Building a plugin crate into a component and its manifest.
//!
//! A plugin crate (`crate-type = ["cdylib"]`, depending on `switchboard-plugin-sdk`) is built
//! for `wasm32-unknown-unknown` with whichever route the machine offers, like
//! `scripts/wasm-toolchain`:
//!
//! 1. rustup with the `wasm32-unknown-unknown` target (added when missing and possible);
//! 2. Debian's `rustc-web`, `cargo-web` and `rust-web-src`, building std with `-Zbuild-std`
//!    (Debian's cargo and rustc, no rustup wrappers on `PATH`; the linker is `rust-lld`, from
//!    `lld-22` or else rustup's own).
//!
//! When neither is there, [`BuildError::NoToolchain`] says exactly what to install. The core
//! module then becomes a component with `wit-component`, and [`build_plugin`] writes
//! `plugin.wasm` and `plugin.toml` (the crate's own `plugin.toml` with the component's
//! SHA-256 filled in).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::manifest::{MANIFEST_FILE, Manifest};

/// What to install when no route builds wasm32.
pub const INSTALL_HINT: &str = "no toolchain for wasm32-unknown-unknown: run `rustup target add wasm32-unknown-unknown`, \
or on Debian/Ubuntu `apt-get install rustc-web cargo-web rust-web-src lld-22`";

/// Why a plugin did not build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither route exists on this machine.
    #[error("{INSTALL_HINT}")]
    NoToolchain,
    /// The Debian route exists but has no linker.
    #[error(
        "the Debian rustc-web route needs a `rust-lld` linker: `apt-get install lld-22` (or install rustup)"
    )]
    NoLinker,
    /// cargo failed.
    #[error("cargo build of {} failed:\n{stderr}", dir.display())]
    Cargo {
        /// The crate.
        dir: PathBuf,
        /// cargo's error output.
        stderr: String,
    },
    /// cargo produced no `.wasm` for the crate (not a `cdylib`?).
    #[error("cargo built no .wasm for {} (is its crate-type `cdylib`?)", dir.display())]
    NoArtifact {
        /// The crate.
        dir: PathBuf,
    },
    /// The core module could not be made into a component.
    #[error("making a component of {}: {reason}", module.display())]
    Componentize {
        /// The core module.
        module: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The crate's `plugin.toml` is missing or invalid.
    #[error("{}: {reason}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// How this machine builds wasm32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// rustup's toolchain with the target installed.
    Rustup,
    /// Debian's `rustc-web` with `-Zbuild-std`; `linker` is set when `/usr/bin/rust-lld`
    /// does not resolve and rustup's `rust-lld` is used instead.
    DebianWeb {
        /// An explicit linker, when needed.
        linker: Option<PathBuf>,
    },
}

fn quiet(cmd: &mut Command) -> Option<std::process::Output> {
    cmd.stdin(Stdio::null()).output().ok()
}

fn rustup_has_target() -> bool {
    let installed = quiet(Command::new("rustup").args(["target", "list", "--installed"]))
        .filter(|o| o.status.success())
        .is_some_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-unknown-unknown")
        });
    installed
        || quiet(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
            .is_some_and(|o| o.status.success())
}

/// Finds the route this machine offers (may run `rustup target add`).
pub fn find_route() -> Result<Route, BuildError> {
    if rustup_has_target() {
        return Ok(Route::Rustup);
    }
    let debian = Path::new("/usr/bin/rustc").is_file()
        && Path::new("/usr/bin/cargo").is_file()
        && quiet(Command::new("/usr/bin/rustc").args(["--print", "sysroot"]))
            .filter(|o| o.status.success())
            .is_some_and(|o| {
                let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                Path::new(&sysroot)
                    .join("lib/rustlib/src/rust/library")
                    .is_dir()
            });
    if !debian {
        return Err(BuildError::NoToolchain);
    }
    // `/usr/bin/rust-lld` is a symlink to lld-22, which may not be installed.
    if std::fs::metadata("/usr/bin/rust-lld").is_ok() {
        return Ok(Route::DebianWeb { linker: None });
    }
    let rustup_lld = quiet(Command::new("rustc").args(["--print", "sysroot"]))
        .filter(|o| o.status.success())
        .map(|o| {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld")
        })
        .filter(|p| p.is_file());
    match rustup_lld {
        Some(lld) => Ok(Route::DebianWeb { linker: Some(lld) }),
        None => Err(BuildError::NoLinker),
    }
}

/// Builds the crate in `dir` for wasm32 (release) into `target_dir`; returns the core
/// module's path.
pub fn build_core_module(dir: &Path, target_dir: &Path) -> Result<PathBuf, BuildError> {
    let route = find_route()?;
    let manifest_path = dir.join("Cargo.toml");
    let mut cmd = match &route {
        Route::Rustup => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            Command::new(cargo)
        }
        Route::DebianWeb { linker } => {
            let mut cmd = Command::new("/usr/bin/cargo");
            cmd.env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO")
                .env_remove("RUSTC_WRAPPER")
                .env("PATH", "/usr/bin:/bin")
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1");
            if let Some(lld) = linker {
                cmd.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", lld);
            }
            cmd
        }
    };
    // Rustup and Debian builds must not share a target dir (different compilers).
    let target_dir = target_dir.join(match route {
        Route::Rustup => "rustup",
        Route::DebianWeb { .. } => "debian-web",
    });
    cmd.arg("build")
        .arg("--release")
        .args(["--target", "wasm32-unknown-unknown"])
        .arg("--manifest-path")
        .arg(&manifest_path)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--message-format", "json-render-diagnostics", "--quiet"])
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null());
    if matches!(route, Route::DebianWeb { .. }) {
        cmd.arg("-Zbuild-std=std,panic_abort");
    }
    let output = cmd.output().map_err(|source| BuildError::Io {
        path: manifest_path.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(BuildError::Cargo {
            dir: dir.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let wanted = std::fs::canonicalize(&manifest_path).unwrap_or(manifest_path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let artifact = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["manifest_path"]
                .as_str()
                .is_some_and(|p| std::fs::canonicalize(p).is_ok_and(|p| p == wanted))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"));
    artifact.ok_or_else(|| BuildError::NoArtifact {
        dir: dir.to_owned(),
    })
}

/// Turns a core module made with `switchboard-plugin-sdk` (it embeds the world) into a
/// component.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .module(core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{e:#}"))
}

/// Builds the plugin crate in `dir` and writes `plugin.wasm` and `plugin.toml` into
/// `out_dir`. `plugin.toml` is the crate's own, with `component` and `sha256` filled in.
/// Files are replaced atomically, so a process loading `out_dir` never sees half a plugin.
pub fn build_plugin(dir: &Path, out_dir: &Path, target_dir: &Path) -> Result<Manifest, BuildError> {
    let template_path = dir.join(MANIFEST_FILE);
    let template = std::fs::read_to_string(&template_path).map_err(|source| BuildError::Io {
        path: template_path.clone(),
        source,
    })?;
    let module = build_core_module(dir, target_dir)?;
    let core = std::fs::read(&module).map_err(|source| BuildError::Io {
        path: module.clone(),
        source,
    })?;
    let component = componentize(&core).map_err(|reason| BuildError::Componentize {
        module: module.clone(),
        reason,
    })?;
    write_plugin(&template_path, &template, &component, out_dir)
}

/// Writes `component` and its manifest (the TOML `template` with `component` and `sha256`
/// set) into `out_dir`.
pub fn write_plugin(
    template_path: &Path,
    template: &str,
    component: &[u8],
    out_dir: &Path,
) -> Result<Manifest, BuildError> {
    let bad = |reason: String| BuildError::Manifest {
        path: template_path.to_owned(),
        reason,
    };
    let mut table: toml::Table = toml::from_str(template).map_err(|e| bad(e.to_string()))?;
    table.insert("component".into(), "plugin.wasm".into());
    table.insert(
        "sha256".into(),
        hex::encode(Sha256::digest(component)).into(),
    );
    let text = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
    let manifest = Manifest::parse(&text).map_err(bad)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let tag = format!(
        "tmp{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    for (name, bytes) in [
        ("plugin.wasm", component),
        (MANIFEST_FILE, manifest.to_toml().as_bytes()),
    ] {
        let path = out_dir.join(name);
        let tmp = out_dir.join(format!("{name}.{tag}"));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
    }
    Ok(manifest)
}
