//! The engine binary as a child process: started on 127.0.0.1:0, its port read from the
//! `switchyard listening on …` line, killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct EngineProcess {
    pub child: Child,
    pub addr: String,
    pub config: PathBuf,
}

/// Writes `yaml` to a fresh temp file and returns its path.
pub fn temp_config(yaml: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("switchyard-test-{}.yaml", uuid::Uuid::now_v7().simple()));
    std::fs::write(&path, yaml).unwrap();
    path
}

impl EngineProcess {
    pub fn start(yaml: &str) -> Self {
        let config = temp_config(yaml);
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config"])
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("engine binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("switchyard listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Self { child, addr, config }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// The engine binary with stderr into a file, stopped with SIGTERM so its shutdown path
/// runs: for tests of what it logs.
pub struct LoggedEngine {
    pub child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl LoggedEngine {
    /// Serves `config` on 127.0.0.1:0 in `dir` (relative store paths land there), stderr
    /// into `dir/engine.log`; `env` is set, and the variables iii configs substitute are
    /// unset so that their defaults apply.
    pub fn start(config: &std::path::Path, dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let log = dir.join("engine.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        for var in SUBSTITUTED {
            command.env_remove(var);
        }
        command.env_remove("SWITCHYARD_LOG").env_remove("SWITCHYARD_LOG_FORMAT").env_remove("NO_COLOR");
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("engine binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = match line.trim().strip_prefix("switchyard listening on ") {
            Some(addr) => addr.to_string(),
            None => {
                let _ = child.wait();
                panic!(
                    "engine did not start ({line:?}); stderr:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            }
        };
        Self { child, addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, then waits for the exit: returns everything written to stderr.
    pub fn stop(mut self) -> Vec<u8> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "engine exits cleanly on SIGTERM: {status}");
        std::fs::read(&self.log).unwrap()
    }
}

impl Drop for LoggedEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Variables the iii fixture configs substitute (`${III_PORT:49134}`, …).
pub const SUBSTITUTED: &[&str] =
    &["III_PORT", "API_HOST", "API_PORT", "REDIS_URL", "RABBITMQ_URL", "AMQP_URL", "STREAM_PORT"];
