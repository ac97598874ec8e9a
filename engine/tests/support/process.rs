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
