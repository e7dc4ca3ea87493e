//! Unit tests of the dispatcher on a real temp-dir store (being written).
