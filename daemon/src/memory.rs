//! How the daemon uses the C allocator (glibc's malloc, which Rust's
//! global allocator calls on Linux).
//!
//! glibc gives every thread that meets contention an arena of its own, up
//! to eight per core, and keeps what was freed in them for later use. The
//! daemon's import and planning threads come and go (tokio's blocking
//! pool), so a daemon that imported and planned 100,000 customers held
//! 740 MB with every tenant store closed (BENCHMARKS.md, "Memory").
//! Two measures, both measured there:
//!
//! * [`limit_arenas`] at start: two arenas per core (at least four),
//!   unless `MALLOC_ARENA_MAX` is set in the environment (then glibc's
//!   reading of it stands). In the 100,000-customer run the peak went from
//!   670–770 MB to 430–470 MB; import took 8–10 % longer, the plan no
//!   longer. One arena per core halved the peak again but made the import
//!   35 % and the plan 25 % slower.
//! * [`release_free`] when tenant stores were closed as idle: the free
//!   pages go back to the system (`malloc_trim`): 740 MB → 60–110 MB idle.
//!
//! Both are no-ops where the C library is not glibc.
//!
//! A leaf: uses nothing of the daemon.

/// Caps glibc's arenas (see the module's text). Call first thing in
/// `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from((2 * cores).max(4)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt takes two integers and no pointer; called before
        // any other thread exists.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Hands the heap's free pages back to the system (see the module's
/// text). Takes a few milliseconds per hundred MB of heap.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer; it walks glibc's own free
        // lists under their locks and may be called from any thread.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
