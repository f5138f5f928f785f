//! The built-in Meta WhatsApp connector's own code, exported as a plugin: the same source runs
//! natively in `switchboard-providers` and here as a WebAssembly component, which is what the
//! plugin host's benchmark compares.

switchboard_plugin_sdk::export_connector!(switchboard_providers::meta::WhatsAppConnector);
