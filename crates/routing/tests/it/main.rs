//! Integration tests: property tests over random timelines, and scenarios from the seeds.

mod properties;
mod seeds;
