//! Executes connector HTTP requests.
