//! Host bindings of the `switchboard:connector@0.1.0` world (generated from `wit/`).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "connector",
    imports: { default: trappable },
});
