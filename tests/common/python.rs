//! Python scripts as test clients: the seeds' own Python clients and the
//! repository's Python package (`clients/python`, importable without
//! installing it), run with `python3` as a child process — to completion
//! ([`run`]), or alongside the test, line by line ([`Script`]).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

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

/// Fails the test unless `python3` imports `websockets` 12 or later: tests
/// of the package's subscriber must not be skipped quietly (`tests/run.sh`
/// installs it).
pub async fn require_websockets() {
    let check = "import websockets, sys; sys.exit(int(websockets.__version__.split('.')[0]) < 12)";
    let ok = Command::new("python3")
        .args(["-c", check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 cannot import websockets >= 12: pip install \"./clients/python[subscriber]\""
    );
}

/// A Python program running beside the test, with `clients/python`
/// importable: the test writes lines to its standard input and reads its
/// standard output line by line (its standard error is the test's).
pub struct Script {
    /// The process; killed if the test ends first.
    child: Child,
    /// Its standard input, until [`Script::finish`] closes it.
    stdin: Option<ChildStdin>,
    /// Its standard output, line by line.
    lines: Lines<BufReader<ChildStdout>>,
}

impl Script {
    /// Starts `python3 path args…`.
    pub fn spawn(path: &Path, args: &[&str]) -> Script {
        let package = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/python");
        let mut child = Command::new("python3")
            .arg(path)
            .args(args)
            .env("PYTHONPATH", package)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run python3");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        Script {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Its next line of output; fails the test when it ends or is silent
    /// for too long.
    pub async fn next_line(&mut self) -> String {
        within("a line from the python script", self.lines.next_line())
            .await
            .expect("reading the script's output")
            .expect("the python script ended (its error output is above)")
    }

    /// Writes `line` (and a newline) to its standard input.
    pub async fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("writing to the script");
        stdin.flush().await.expect("flushing the script's input");
    }

    /// Closes its standard input and waits for it to exit.
    pub async fn finish(mut self) -> ExitStatus {
        self.stdin.take();
        within("the python script to exit", self.child.wait())
            .await
            .expect("waiting for python3")
    }
}
