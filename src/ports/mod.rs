//! Ports: what the domain needs from the world, as traits, with in-memory implementations
//! for tests and embedders.

pub mod health;
