//! Channel adapters: they turn platform input into engine events and carry
//! the engine's actions out on the platform. Today: the console.

pub mod console;
