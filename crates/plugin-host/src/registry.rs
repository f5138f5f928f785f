//! [`PluginRegistry`]: load, reload, roll back and unload plugins while serving.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::manifest::Capabilities;
use crate::{LoadError, PluginHost, WasmConnector};

struct Slot {
    current: Arc<WasmConnector>,
    previous: Option<Arc<WasmConnector>>,
}

/// The plugins a process serves, by id, with hot reload.
///
/// [`get`](Self::get) hands out the current version as an `Arc`: a call in flight keeps the
/// version it started with alive and finishes on it, whatever is loaded meanwhile. Loading
/// compiles and smoke-checks the new version before taking the lock, then swaps it in; the
/// replaced version is kept for [`rollback`](Self::rollback). Take a fresh handle per request
/// so that new requests see new versions.
#[derive(Default)]
pub struct PluginRegistry {
    slots: RwLock<HashMap<String, Slot>>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.loaded()).finish()
    }
}

impl PluginRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads (or reloads) the plugin in `dir` with `grants`, and makes it current. The version
    /// it replaces becomes the rollback target. On error nothing changes.
    pub fn load_dir(
        &self,
        host: &PluginHost,
        dir: &Path,
        grants: &Capabilities,
    ) -> Result<Arc<WasmConnector>, LoadError> {
        let connector = host.load_dir(dir, grants)?;
        Ok(self.insert(connector))
    }

    /// Makes an already loaded connector current for its id; returns it.
    pub fn insert(&self, connector: WasmConnector) -> Arc<WasmConnector> {
        let connector = Arc::new(connector);
        let id = connector.manifest().id.clone();
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        match slots.get_mut(&id) {
            Some(slot) => {
                let old = std::mem::replace(&mut slot.current, connector.clone());
                slot.previous = Some(old);
            }
            None => {
                slots.insert(
                    id,
                    Slot {
                        current: connector.clone(),
                        previous: None,
                    },
                );
            }
        }
        connector
    }

    /// The current version of plugin `id`.
    pub fn get(&self, id: &str) -> Option<Arc<WasmConnector>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(id).map(|slot| slot.current.clone())
    }

    /// Makes the previous version current again (and the current one the previous).
    pub fn rollback(&self, id: &str) -> Result<Arc<WasmConnector>, LoadError> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = slots
            .get_mut(id)
            .ok_or_else(|| LoadError::NotLoaded(id.to_owned()))?;
        let previous = slot
            .previous
            .take()
            .ok_or_else(|| LoadError::NoPrevious(id.to_owned()))?;
        let current = std::mem::replace(&mut slot.current, previous);
        slot.previous = Some(current);
        Ok(slot.current.clone())
    }

    /// Unloads plugin `id` (both versions). Calls in flight finish; the code is freed when the
    /// last of them drops its handle.
    pub fn unload(&self, id: &str) -> Result<(), LoadError> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| LoadError::NotLoaded(id.to_owned()))
    }

    /// `(id, current version, previous version)` of every loaded plugin, sorted by id.
    pub fn loaded(&self) -> Vec<(String, String, Option<String>)> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = slots
            .iter()
            .map(|(id, slot)| {
                (
                    id.clone(),
                    slot.current.manifest().version.clone(),
                    slot.previous.as_ref().map(|p| p.manifest().version.clone()),
                )
            })
            .collect();
        out.sort();
        out
    }
}
