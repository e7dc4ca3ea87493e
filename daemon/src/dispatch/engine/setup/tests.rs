#![allow(clippy::unwrap_used)]

use touchpoint_common::config::DispatchConfig;

use super::*;
use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::*;

#[test]
fn a_relay_ca_file_that_cannot_be_read_stops_the_start_with_its_name() {
    let fx = Fx::new();
    let mut cfg = DispatchConfig::default();
    cfg.smtp.host = "127.0.0.1".into();
    cfg.smtp.ca_file = fx.dir.path().join("no-such-ca.pem").display().to_string();
    let paths = DispatchPaths {
        spool: fx.dir.path().join("mail2"),
        letters: fx.dir.path().join("letters2"),
        calls: fx.dir.path().join("calls2"),
        secret: fx.dir.path().join("dispatch2.key"),
        bounce_maildir: None,
        batch_at: 0,
    };
    let err = match Dispatcher::new(fx.stores.clone(), fx.policies.clone(), &cfg, paths.clone()) {
        Ok(_) => panic!("a missing CA file must stop the start"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("dispatch.smtp.ca_file") && err.contains("no-such-ca.pem"),
        "{err}"
    );
    // A file that holds no certificate is refused as well.
    std::fs::write(fx.dir.path().join("no-such-ca.pem"), "not a certificate").unwrap();
    assert!(Dispatcher::new(fx.stores.clone(), fx.policies.clone(), &cfg, paths).is_err());
}
