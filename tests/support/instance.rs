//! A `herald run` process for tests: its own configuration file, admin port and log, with the
//! signals the tests send it (kill -9, SIGTERM, SIGSTOP/SIGCONT) and the admin endpoints they
//! read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{HERALD, free_port, request};

pub struct Instance {
    child: Child,
    pub admin: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    extra_args: Vec<String>,
    /// A program `herald` runs under (`faketime -f +2m`), if any.
    wrapper: Vec<String>,
}

impl Instance {
    /// Writes `dir/herald.toml` (an `[admin]` table on a free port, then `config`) and starts
    /// `herald run` on it.
    pub fn start(dir: &Path, config: &str) -> Instance {
        Instance::start_with(dir, config, &[])
    }

    /// As [`Instance::start`], with more arguments to `herald run`.
    pub fn start_with(dir: &Path, config: &str, args: &[&str]) -> Instance {
        Instance::start_under(dir, config, args, &[])
    }

    /// As [`Instance::start_with`], with `herald` run by `wrapper` (`["faketime", "-f", "+2m"]`).
    pub fn start_under(dir: &Path, config: &str, args: &[&str], wrapper: &[&str]) -> Instance {
        Instance::start_on(dir, config, args, wrapper, free_port())
    }

    /// As [`Instance::start`], its admin listener on `admin` (a configuration that names its
    /// own address, such as the dashboard's `public_url`, knows it beforehand).
    pub fn start_at(dir: &Path, config: &str, admin: u16) -> Instance {
        Instance::start_on(dir, config, &[], &[], admin)
    }

    fn start_on(dir: &Path, config: &str, args: &[&str], wrapper: &[&str], admin: u16) -> Instance {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("herald.toml");
        std::fs::write(
            &path,
            format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n{config}"),
        )
        .unwrap();
        let log = dir.join("herald.log");
        let extra_args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let wrapper: Vec<String> = wrapper.iter().map(|a| a.to_string()).collect();
        Instance {
            child: spawn(&wrapper, &path, &log, &extra_args),
            admin,
            config: path,
            log,
            extra_args,
            wrapper,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn restart(&mut self) {
        self.child = spawn(&self.wrapper, &self.config, &self.log, &self.extra_args);
    }

    /// kill -9, and reap it.
    /// SIGKILL to the instance's process group: `herald` and the program it runs under
    /// (`faketime` forks it), so that no `herald` outlives its test.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`) to the instance's process group.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), "--", &format!("-{}", self.child.id())])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name}");
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> i32 {
        self.signal("TERM");
        self.child.wait().unwrap().code().unwrap_or(-1)
    }

    /// Waits (up to `limit`) for the process to exit by itself; its exit status, if it did.
    pub fn exited_within(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn ready(&self) -> u16 {
        request(self.admin, "GET", "/readyz", &[], b"").0
    }

    /// Waits (up to a minute) until `/readyz` answers `want`.
    pub fn wait_ready(&self, want: u16, why: &str) {
        let started = Instant::now();
        while self.ready() != want {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{why}: /readyz never answered {want}; log:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs another `herald` command on this instance's configuration; its stdout.
    pub fn herald(&self, args: &[&str]) -> String {
        let out = Command::new(HERALD)
            .args(args)
            .args(["--config", self.config.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", "--", &format!("-{}", self.child.id())])
            .status();
        self.kill();
    }
}

fn spawn(wrapper: &[String], config: &Path, log: &Path, args: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(HERALD);
            command
        }
        None => Command::new(HERALD),
    };
    // A process group of its own, which signals and kills reach whole.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .args(["run", "--config", config.to_str().unwrap()])
        .args(args)
        .env("HERALD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}
