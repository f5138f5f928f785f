//! `/api/v1/plugins` (admin tokens only): list, load, reload, roll back and unload the
//! gateway's plugins ([`crate::gateway::plugins`]). Loads compile off the async runtime.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Principal;
use super::errors::{ApiError, ApiPath, ApiQuery, JsonBody};
use crate::gateway::App;
use crate::gateway::plugins::{Loaded, OpError, OpErrorKind, Plugins};

/// The plugins, for an admin token.
fn plugins(app: &App, principal: &Principal) -> Result<Arc<Plugins>, ApiError> {
    if !principal.is_admin() {
        return Err(ApiError::forbidden(
            "plugins are managed with an admin token",
        ));
    }
    app.plugins.clone().ok_or_else(|| {
        ApiError::not_found("plugins are off: configure `plugins_dir` or `data_dir`")
    })
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e.kind {
            OpErrorKind::NotFound => ApiError::not_found(e.message),
            OpErrorKind::Invalid => ApiError::invalid(e.message),
            OpErrorKind::Refused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_refused",
                e.message,
            ),
            OpErrorKind::Conflict(code) => ApiError::conflict(code, e.message),
        }
    }
}

/// Runs a blocking plugin operation off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "plugin operation panicked");
            Err(ApiError::internal())
        }
    }
}

/// The answer to a load or reload: the plugin, and whether a new version was swapped in.
fn loaded(plugins: &Plugins, loaded: &Loaded) -> Json<Value> {
    let changed = matches!(loaded, Loaded::Swapped(_));
    let c = loaded.connector();
    if changed {
        tracing::info!(
            plugin = %c.manifest().id,
            version = %c.manifest().version,
            sha256 = %c.manifest().sha256,
            "plugin loaded through the API"
        );
    }
    Json(json!({"changed": changed, "plugin": plugins.describe(c)}))
}

/// `GET /plugins`: every loaded plugin (version, sha256, world, grants, call and trap counts,
/// circuit, previous version, channels) and the directories whose last load was refused.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let plugins = plugins(&app, &principal)?;
    Ok(Json(plugins.list()))
}

/// `POST /plugins/load` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadBody {
    /// A plugin directory, or the component inside one, relative to the plugins directory.
    path: Option<String>,
}

/// `POST /plugins/load`: loads (or reloads) the plugin at `path` in the plugins directory.
pub(crate) async fn load(
    State(app): State<Arc<App>>,
    principal: Principal,
    JsonBody(body): JsonBody<LoadBody>,
) -> Result<Json<Value>, ApiError> {
    let plugins = plugins(&app, &principal)?;
    let path = body.path.ok_or_else(|| {
        ApiError::invalid("`path` is required: a plugin directory inside the plugins directory")
    })?;
    let p = plugins.clone();
    let result = blocking(move || p.load_path(&path)).await?;
    Ok(loaded(&plugins, &result))
}

/// `POST /plugins/{id}/reload`: loads plugin `id` again from its directory (a no-op,
/// `"changed": false`, when the directory holds the current version).
pub(crate) async fn reload(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let plugins = plugins(&app, &principal)?;
    let p = plugins.clone();
    let result = blocking(move || p.reload(&id)).await?;
    Ok(loaded(&plugins, &result))
}

/// `POST /plugins/{id}/rollback`: the previous version becomes current (and the current one
/// the previous).
pub(crate) async fn rollback(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let plugins = plugins(&app, &principal)?;
    let current = plugins.rollback(&id).map_err(ApiError::from)?;
    tracing::info!(plugin = %id, version = %current.manifest().version, "plugin rolled back");
    Ok(Json(json!({"plugin": plugins.describe(&current)})))
}

/// `POST /plugins/{id}/unload` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnloadQuery {
    /// Unload even while channels use the plugin.
    #[serde(default)]
    force: bool,
}

/// `POST /plugins/{id}/unload[?force=true]`: refused (409) while a channel uses the plugin.
pub(crate) async fn unload(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<UnloadQuery>,
) -> Result<Json<Value>, ApiError> {
    let plugins = plugins(&app, &principal)?;
    plugins.unload(&id, query.force).map_err(ApiError::from)?;
    tracing::info!(plugin = %id, force = query.force, "plugin unloaded");
    Ok(Json(json!({"unloaded": id})))
}
