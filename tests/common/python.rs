//! Python scripts as test clients: the seeds' own Python clients and the
//! repository's Python package (`clients/python`, importable without
//! installing it), run with `python3` as a child process.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

use super::within;

/// Whether `python3` can import `websockets` (the seeds' clients need it).
pub async fn has_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Runs the Python program `script` with `args` and the package of
/// `clients/python` importable; its standard output. Fails the test when
/// it exits unsuccessfully (with its output) or takes too long.
pub async fn run(script: &str, args: &[&str]) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path =
        std::env::temp_dir().join(format!("roomcast_test_{}_{nanos}.py", std::process::id()));
    std::fs::write(&path, script).expect("write the script");
    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/python");
    let output = within(
        "a python script",
        Command::new("python3")
            .arg(&path)
            .args(args)
            .env("PYTHONPATH", package)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run python3");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
