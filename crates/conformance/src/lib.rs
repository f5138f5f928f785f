//! switchboard-conformance
