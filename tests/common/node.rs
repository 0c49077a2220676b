//! Node.js for the tests that run JavaScript (the seed 004 client, the
//! native client's `node --test` suites): which flags give this machine's
//! Node a global `WebSocket`.

use std::process::Stdio;
use tokio::process::Command;

/// The flags that give this machine's Node a global `WebSocket`: none from
/// Node 22, `--experimental-websocket` on Node 20 and 21. `None` without
/// Node or without one.
pub async fn websocket_flags() -> Option<Vec<&'static str>> {
    for flags in [vec![], vec!["--experimental-websocket"]] {
        let ok = Command::new("node")
            .args(&flags)
            .args([
                "-e",
                "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if ok {
            return Some(flags);
        }
    }
    None
}

/// True when `node` runs at all.
pub async fn runs() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}
