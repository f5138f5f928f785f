//! Host bindings of the `switchboard:connector` worlds this host links side by side: 0.2.0
//! (current, `wit/connector.wit`) and 0.1.0 (frozen, `wit/v0.1.0/connector.wit`). Everything
//! 0.1.0 has is unchanged in 0.2.0, so 0.1.0's bindings reuse 0.2.0's types and one set of
//! conversions serves both; [`Pre`], [`Instance`] and [`Guest`] dispatch on the version.

use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker};

use crate::imports::HostState;

/// The current world, with the gated `http` and `hmac` imports.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit/connector.wit",
        world: "connector",
        imports: { default: trappable },
    });
}

/// The first world: `log`, `clock`, `random`. Its types are 0.2.0's.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1.0/connector.wit",
        world: "connector",
        imports: { default: trappable },
        with: {
            "switchboard:connector/types@0.1.0": crate::bindings::v0_2::switchboard::connector::types,
        },
    });
}

/// Adds every supported world's imports to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    v0_2::Connector::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    v0_1::Connector::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

/// A plugin version ready to instantiate, for the world it was built against.
pub(crate) enum Pre {
    V0_1(v0_1::ConnectorPre<HostState>),
    V0_2(v0_2::ConnectorPre<HostState>),
}

impl Pre {
    /// Type-checks the component's exports against `world`'s.
    pub(crate) fn new(world: &str, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        match world {
            "0.1.0" => Ok(Pre::V0_1(v0_1::ConnectorPre::new(pre)?)),
            "0.2.0" => Ok(Pre::V0_2(v0_2::ConnectorPre::new(pre)?)),
            other => Err(wasmtime::format_err!("no bindings for world {other}")),
        }
    }

    /// The world version.
    pub(crate) fn world(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => "0.1.0",
            Pre::V0_2(_) => "0.2.0",
        }
    }

    pub(crate) fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_1(pre) => Instance::V0_1(pre.instantiate(store)?),
            Pre::V0_2(pre) => Instance::V0_2(pre.instantiate(store)?),
        })
    }
}

/// A live instance.
pub(crate) enum Instance {
    V0_1(v0_1::Connector),
    V0_2(v0_2::Connector),
}

impl Instance {
    pub(crate) fn guest(&self) -> Guest<'_> {
        match self {
            Instance::V0_1(i) => Guest::V0_1(i.switchboard_connector_plugin()),
            Instance::V0_2(i) => Guest::V0_2(i.switchboard_connector_plugin()),
        }
    }
}

/// The `plugin` export of a live instance.
#[derive(Clone, Copy)]
pub(crate) enum Guest<'a> {
    V0_1(&'a v0_1::exports::switchboard::connector::plugin::Guest),
    V0_2(&'a v0_2::exports::switchboard::connector::plugin::Guest),
}

use v0_2::switchboard::connector::types as wit;

/// Calls the same export on either version (same argument and result types).
macro_rules! dispatch {
    ($self:expr, $g:ident => $call:expr) => {
        match $self {
            Guest::V0_1($g) => $call,
            Guest::V0_2($g) => $call,
        }
    };
}

type Store_ = Store<HostState>;

#[allow(clippy::type_complexity, reason = "the generated signatures")]
impl Guest<'_> {
    pub(crate) fn call_info(self, s: &mut Store_) -> wasmtime::Result<String> {
        dispatch!(self, g => g.call_info(s))
    }

    pub(crate) fn call_webhook_auth(
        self,
        s: &mut Store_,
        ctx: &wit::ChannelContext,
    ) -> wasmtime::Result<Result<String, wit::ConnectorError>> {
        dispatch!(self, g => g.call_webhook_auth(s, ctx))
    }

    pub(crate) fn call_outbound_auth(
        self,
        s: &mut Store_,
        ctx: &wit::ChannelContext,
    ) -> wasmtime::Result<Result<String, wit::ConnectorError>> {
        dispatch!(self, g => g.call_outbound_auth(s, ctx))
    }

    pub(crate) fn call_route(
        self,
        s: &mut Store_,
        req: &wit::WebhookRequest,
    ) -> wasmtime::Result<Option<String>> {
        dispatch!(self, g => g.call_route(s, req))
    }

    pub(crate) fn call_parse_webhook(
        self,
        s: &mut Store_,
        ctx: &wit::ChannelContext,
        req: &wit::WebhookRequest,
    ) -> wasmtime::Result<Result<String, wit::ConnectorError>> {
        dispatch!(self, g => g.call_parse_webhook(s, ctx, req))
    }

    pub(crate) fn call_build_send(
        self,
        s: &mut Store_,
        ctx: &wit::ChannelContext,
        msg: &str,
    ) -> wasmtime::Result<Result<wit::HttpRequest, wit::ConnectorError>> {
        dispatch!(self, g => g.call_build_send(s, ctx, msg))
    }

    pub(crate) fn call_parse_send_response(
        self,
        s: &mut Store_,
        ctx: &wit::ChannelContext,
        msg: &str,
        resp: &wit::HttpResponse,
    ) -> wasmtime::Result<Result<String, wit::ProviderError>> {
        dispatch!(self, g => g.call_parse_send_response(s, ctx, msg, resp))
    }

    pub(crate) fn call_media_step(
        self,
        s: &mut Store_,
        ctx: &wit::ChannelContext,
        source: &wit::MediaSource,
        previous: Option<&wit::HttpResponse>,
    ) -> wasmtime::Result<Result<wit::NextMediaStep, wit::ConnectorError>> {
        dispatch!(self, g => g.call_media_step(s, ctx, source, previous))
    }
}
