//! The processes a chaos run starts — engines, a private `redis-server`, worker processes —
//! each killed with SIGKILL when its handle drops, so a failing run leaves nothing behind.
//!
//! Invariant: a handle returned by a `start` is ready: an engine has printed its
//! `switchyard listening on …` line, Redis answers `PING` (its AOF loaded), a worker's
//! stdout is being read into the [`Recorder`].

use crate::check::Run;
use crate::events::Line;
use anyhow::{Context as _, bail};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; the child binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Resident set size of `pid` in bytes (`VmRSS`), 0 if it is gone.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Bytes of the file at `path`, 0 if there is none.
pub fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn log_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("open {}", path.display()))
}

/// An engine process.
pub struct Engine {
    child: Child,
}

impl Engine {
    pub fn start(bin: &Path, config: &Path, port: u16, env: &[(&str, String)], log: &Path) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--config"]).arg(config).args(["--listen", &format!("127.0.0.1:{port}")]);
        cmd.env("SWITCHYARD_LOG", "warn").stdout(Stdio::piped()).stderr(log_file(log)?);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("start {}", bin.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let want = format!("switchyard listening on 127.0.0.1:{port}");
        if line.trim() != want {
            let _ = child.kill();
            bail!("engine did not start (first line {line:?}); see {}", log.display());
        }
        Ok(Self { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

/// A private `redis-server` with every write fsync'd to its AOF before it answers.
pub struct Redis {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Redis {
    pub fn start(port: u16, dir: &Path) -> anyhow::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start redis-server (is it installed?)")?;
        let me = Self { child, port, dir: dir.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !me.pong() {
            if Instant::now() > deadline {
                bail!("redis-server on port {port} did not answer PING; see {}/redis.log", dir.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    /// Whether Redis answers `+PONG` (not `-LOADING`).
    fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `used_memory` from `INFO memory`, in bytes; `None` if Redis does not answer.
    pub fn used_memory(&self) -> Option<u64> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"INFO memory\r\n").ok()?;
        let mut reply = BufReader::new(s);
        let mut head = String::new();
        reply.read_line(&mut head).ok()?;
        let len: usize = head.trim().strip_prefix('$')?.parse().ok()?;
        let mut body = vec![0u8; len];
        reply.read_exact(&mut body).ok()?;
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Bytes of the append-only files (Redis 7 keeps them in `appendonlydir/`).
    pub fn aof_bytes(&self) -> u64 {
        dir_bytes(&self.dir.join("appendonlydir")) + file_bytes(&self.dir.join("appendonly.aof"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private RabbitMQ node (its own name, ports, data and log directories, no plugins), so
/// killing it touches no other broker on the machine. Started from the package's unwrapped
/// script (`/usr/lib/rabbitmq/bin`, which does not switch to the `rabbitmq` user) in its own
/// process group, with `HOME` in its directory (its Erlang cookie stays there too).
pub struct Rabbit {
    child: Child,
    pub port: u16,
    pub dist_port: u16,
    pub dir: PathBuf,
    node: String,
    reaped: bool,
}

/// Where the package keeps the scripts that run as the calling user.
const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

impl Rabbit {
    /// Starts (or, on the same `dir`, restarts) the node and waits until it accepts AMQP
    /// connections.
    pub fn start(port: u16, dist_port: u16, dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let node = format!("chaos-{port}@localhost");
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(dir.join("enabled_plugins"), "")?;
        // Our own config file, so the machine's /etc/rabbitmq/rabbitmq.conf (its listener)
        // is not read.
        std::fs::write(dir.join("rabbitmq.conf"), format!("listeners.tcp.local = 127.0.0.1:{port}\n"))?;
        let child = Command::new(Path::new(RABBIT_BIN).join("rabbitmq-server"))
            .envs(Self::env(&node, port, dist_port, dir))
            .current_dir(dir)
            .stdout(log_file(&dir.join("server.out"))?)
            .stderr(log_file(&dir.join("server.out"))?)
            .process_group(0)
            .spawn()
            .context("start rabbitmq-server (is RabbitMQ installed?)")?;
        let me = Self { child, port, dist_port, dir: dir.to_path_buf(), node, reaped: false };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !me.speaks_amqp() {
            if Instant::now() > deadline {
                bail!("RabbitMQ node on port {port} did not start; see {}/server.out", dir.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(me)
    }

    /// Whether the node answers an AMQP 0-9-1 protocol header with a frame (its
    /// `connection.start`): a listener that merely accepts could be a dying node's.
    fn speaks_amqp(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut frame = [0u8; 1];
        s.write_all(b"AMQP\x00\x00\x09\x01").is_ok() && s.read_exact(&mut frame).is_ok() && frame[0] == 1
    }

    fn env(node: &str, port: u16, dist_port: u16, dir: &Path) -> Vec<(String, String)> {
        let d = |sub: &str| dir.join(sub).display().to_string();
        vec![
            ("HOME".into(), d("home")),
            ("RABBITMQ_NODENAME".into(), node.into()),
            ("RABBITMQ_NODE_IP_ADDRESS".into(), "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT".into(), port.to_string()),
            ("RABBITMQ_DIST_PORT".into(), dist_port.to_string()),
            ("RABBITMQ_MNESIA_BASE".into(), d("mnesia")),
            ("RABBITMQ_LOG_BASE".into(), d("log")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE".into(), d("enabled_plugins")),
            ("RABBITMQ_CONFIG_FILE".into(), d("rabbitmq.conf")),
        ]
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Bytes of the node's data directory (quorum queue logs and segments, its metadata).
    pub fn data_bytes(&self) -> u64 {
        dir_bytes(&self.dir.join("mnesia"))
    }

    /// `kill -9` of the node's whole process group (the script and the Erlang VM).
    fn kill(&mut self) {
        if std::mem::replace(&mut self.reaped, true) {
            return;
        }
        let group = -(self.child.id() as i32);
        // SAFETY: signalling a process group this handle started; no memory is involved.
        unsafe {
            libc::kill(group, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // The Erlang VM outlives the script by a moment (its listener still open): wait,
        // bounded, until no process of the group is left.
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: signal 0 only asks whether the group still has a process.
        while unsafe { libc::kill(group, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A clean stop through `rabbitmqctl`, then the kill (for whatever is left).
    pub fn stop(mut self) {
        let _ = Command::new(Path::new(RABBIT_BIN).join("rabbitmqctl"))
            .args(["-n", &self.node, "stop"])
            .envs(Self::env(&self.node, self.port, self.dist_port, &self.dir))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.kill();
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every run every worker process recorded.
#[derive(Default)]
pub struct Recorder {
    runs: parking_lot::Mutex<Vec<Run>>,
}

impl Recorder {
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().clone()
    }

    /// Runs of `worker` started and not ended.
    pub fn open_on(&self, worker: usize) -> usize {
        self.runs.lock().iter().filter(|r| r.worker == worker && r.end.is_none()).count()
    }

    /// Reads a worker process's lines until its stdout closes. The runs of a killed process
    /// that never wrote their end keep `end: None`, which the checks read as "ended when the
    /// worker was severed".
    fn read(&self, worker: usize, engine: usize, stdout: impl Read) {
        let mut open: HashMap<(String, u32), usize> = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            match Line::parse(&line) {
                Some(Line::Start { at, receipt, queue, group, seq, attempt }) => {
                    let mut runs = self.runs.lock();
                    open.insert((receipt.clone(), attempt), runs.len());
                    runs.push(Run { worker, engine, receipt, queue, group, seq, start: at, end: None, ok: false });
                }
                Some(Line::End { at, receipt, attempt, ok }) => {
                    if let Some(i) = open.remove(&(receipt, attempt)) {
                        let run = &mut self.runs.lock()[i];
                        run.end = Some(at);
                        run.ok = ok;
                    }
                }
                None => eprintln!("chaos: worker {worker} wrote an unknown line: {line:?}"),
            }
        }
    }
}

/// A worker process in a slot; the harness replaces it when it kills it.
pub struct WorkerProc {
    child: Child,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl WorkerProc {
    pub fn start(
        args: &[String],
        slot: usize,
        engine: usize,
        recorder: Arc<Recorder>,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("worker")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log_file(log)?)
            .spawn()
            .context("start a worker process")?;
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || recorder.read(slot, engine, stdout));
        Ok(Self { child, reader: Some(reader) })
    }

    /// SIGKILL, then waits until every line it wrote has been read.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.stop();
    }
}
