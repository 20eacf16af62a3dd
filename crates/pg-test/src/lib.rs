#![forbid(unsafe_code)]
//! A throw-away PostgreSQL cluster for tests and benchmarks.
//!
//! [`Cluster::start`] runs `initdb` in a fresh temporary directory and starts a server on a free
//! loopback port, with `fsync` off (commits stay synchronous, so behaviour is the same, only
//! faster); [`Cluster::start_durable`] keeps `fsync` on for benchmarks. Each test takes a database
//! of its own with [`Cluster::fresh_database`], usually on the one cluster of the test process,
//! [`Cluster::shared`].
//!
//! The server never outlives the test process: a small watchdog shell stops it (and removes its
//! directory) as soon as the process is gone, however it ended, and dropping a [`Cluster`] stops
//! it at once. PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
//! user. The binaries are those of the newest `/usr/lib/postgresql/*/bin`, else of
//! `pg_config --bindir`; `CUSTODIA_PG_BIN` names another directory.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The user the server runs as when the tests run as root.
const SERVER_USER: &str = "postgres";

/// Names of databases and directories made by this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running PostgreSQL server in a temporary directory, stopped and removed on drop.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_server_user: bool,
    watchdog: Mutex<Option<Child>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("dir", &self.dir).field("port", &self.port).finish_non_exhaustive()
    }
}

impl Cluster {
    /// A new cluster for tests: `fsync` and `full_page_writes` off (`synchronous_commit` stays on).
    pub fn start() -> Cluster {
        Self::start_with(false)
    }

    /// A new cluster whose commits are durable (`fsync` on), for benchmarks.
    pub fn start_durable() -> Cluster {
        Self::start_with(true)
    }

    /// The cluster of this test process, started on first use. It is never dropped: its watchdog
    /// stops it when the process ends.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Cluster::start)
    }

    fn start_with(durable: bool) -> Cluster {
        let bin = bin_dir();
        let as_server_user = effective_uid_is_root();
        let dir = make_dir(as_server_user);
        let data = dir.join("data");
        let init = run(
            as_server_user,
            Command::new(bin.join("initdb")).arg("-D").arg(&data).args([
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "-U",
                "postgres",
                "--no-sync",
            ]),
        );
        if !init.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            panic!("initdb failed in {}:\n{}", dir.display(), output_text(&init));
        }
        require_password(&data);
        let mut last_failure = String::new();
        // The port is free when looked up, but another process may take it before the server
        // binds it: try again with another.
        for _ in 0..5 {
            let port = free_port();
            write_settings(&data, &dir, port, durable);
            let started = run(
                as_server_user,
                Command::new(bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-w", "-t", "60", "-l"])
                    .arg(dir.join("logfile"))
                    .arg("start"),
            );
            if started.status.success() {
                let cluster = Cluster { dir, bin, port, as_server_user, watchdog: Mutex::new(None) };
                cluster.start_watchdog();
                return cluster;
            }
            let log = std::fs::read_to_string(dir.join("logfile")).unwrap_or_default();
            last_failure = format!("{}\n--- server log ---\n{log}", output_text(&started));
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("the PostgreSQL server in {} did not start:\n{last_failure}", dir.display());
    }

    /// Stop the server and remove its directory once this process is gone, however it ends.
    fn start_watchdog(&self) {
        let pg_ctl =
            format!("{} -D {} -m immediate stop", shell_quote(&self.bin.join("pg_ctl")), shell_quote(&self.data_dir()));
        let stop = if self.as_server_user { format!("runuser -u {SERVER_USER} -- {pg_ctl}") } else { pg_ctl };
        // The loop runs as this process's user: `kill -0` from another user cannot see a root
        // process, so only the stop itself runs as the server's user.
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = shell_quote(&self.dir),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so a Ctrl-C meant for the tests does not end it first.
            .process_group(0)
            .spawn()
            .expect("cannot start the watchdog shell of the PostgreSQL test cluster");
        *self.watchdog.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A PostgreSQL program of the binaries this cluster runs (`pgbench`, `psql`, ...).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The temporary directory holding the data directory, the log and the socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The URL of `database` for [`PASSWORD_ROLE`] logging in with `password` (the role is
    /// created on first use).
    pub fn password_role_url(&self, database: &str, password: &str) -> String {
        execute(
            &self.url("postgres"),
            &format!(
                "DO $$ BEGIN CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}';
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            ),
        );
        format!("postgres://{PASSWORD_ROLE}:{password}@127.0.0.1:{}/{database}", self.port)
    }

    /// Stop the server at once, as a crash would (`pg_ctl -m immediate stop`): its clients'
    /// connections break and new ones are refused until [`Cluster::start_again`].
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Start the stopped server again, on the same port and data.
    pub fn start_again(&self) {
        let log = self.dir.join("logfile");
        self.pg_ctl(&["-w", "-t", "60", "-l", &log.to_string_lossy(), "start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out =
            run(self.as_server_user, Command::new(self.bin.join("pg_ctl")).arg("-D").arg(self.data_dir()).args(args));
        assert!(out.status.success(), "pg_ctl {args:?} failed:\n{}", output_text(&out));
    }

    /// A new empty database with a name of its own; its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("t_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        execute(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(
            self.as_server_user,
            Command::new(self.bin.join("pg_ctl")).arg("-D").arg(self.data_dir()).args([
                "-m",
                "immediate",
                "-w",
                "stop",
            ]),
        );
        if let Some(mut watchdog) = self.watchdog.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run one or more statements (simple query protocol) on the database at `url`; the number of
/// rows they changed. Panics with the SQL on error.
pub fn execute(url: &str, sql: &str) -> u64 {
    let mut client = connect(url);
    let messages = client.simple_query(sql).unwrap_or_else(|e| panic!("{sql}\nfailed: {}", error_text(&e)));
    messages
        .iter()
        .map(|m| match m {
            postgres::SimpleQueryMessage::CommandComplete(n) => *n,
            _ => 0,
        })
        .sum()
}

/// Run a query on the database at `url`; every row, each column as text (`None` for NULL).
/// Panics with the SQL on error.
pub fn query_strings(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut client = connect(url);
    let messages = client.simple_query(sql).unwrap_or_else(|e| panic!("{sql}\nfailed: {}", error_text(&e)));
    messages
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {}", error_text(&e)))
}

fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The directory of the PostgreSQL server programs.
fn bin_dir() -> PathBuf {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("CUSTODIA_PG_BIN") {
        let dir = PathBuf::from(dir);
        if !has_server(&dir) {
            panic!("CUSTODIA_PG_BIN is {}, which holds no initdb and pg_ctl", dir.display());
        }
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return dir;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return dir;
        }
    }
    panic!(
        "the PostgreSQL server programs (initdb, pg_ctl) are not installed: install them with \
         `apt-get install postgresql-15`, or set CUSTODIA_PG_BIN to the directory that holds them"
    );
}

fn effective_uid_is_root() -> bool {
    // /proc/self belongs to the effective user of the process.
    if let Ok(meta) = std::fs::metadata("/proc/self") {
        return meta.uid() == 0;
    }
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A new directory for the cluster, readable and traversable by the server's user.
fn make_dir(as_server_user: bool) -> PathBuf {
    let base = std::env::var_os("CUSTODIA_PG_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir =
        base.join(format!("custodia-pg-{}-{}-{nanos:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot set the permissions of {}: {e}", dir.display()));
    if as_server_user {
        let chown = Command::new("chown").arg("-R").arg(SERVER_USER).arg(&dir).output();
        match chown {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "cannot give {} to the `{SERVER_USER}` user (PostgreSQL does not run as root): {}",
                dir.display(),
                output_text(&out)
            ),
            Err(e) => panic!("cannot run chown: {e}"),
        }
    }
    dir
}

fn write_settings(data: &Path, dir: &Path, port: u16, durable: bool) {
    let flag = if durable { "on" } else { "off" };
    let settings = format!(
        "\n# custodia-pg-test\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{}'\n\
         max_connections = 200\n\
         shared_buffers = 256MB\n\
         fsync = {flag}\n\
         full_page_writes = {flag}\n",
        dir.display()
    );
    // Settings given later in the file win, so each attempt only appends.
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap_or_else(|e| panic!("cannot read {}: {e}", conf.display()));
    text.push_str(&settings);
    std::fs::write(&conf, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
}

/// The one role of the cluster that must give its password (every other logs in on trust), so
/// that tests can try a wrong one: [`PASSWORD_ROLE`], whose password is [`PASSWORD`].
pub const PASSWORD_ROLE: &str = "custodia_password_test";
pub const PASSWORD: &str = "right-horse-battery";

fn require_password(data: &Path) {
    // The first line that matches decides, so this one goes before initdb's trust lines.
    let hba = data.join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap_or_else(|e| panic!("cannot read {}: {e}", hba.display()));
    let text = format!("host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n{text}");
    std::fs::write(&hba, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", hba.display()));
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a loopback port");
    listener.local_addr().expect("a bound port").port()
}

/// Run a command, as the server's user when asked.
fn run(as_server_user: bool, command: &mut Command) -> Output {
    let mut command = if as_server_user {
        let mut wrapped = Command::new("runuser");
        wrapped.args(["-u", SERVER_USER, "--"]).arg(command.get_program()).args(command.get_args());
        // The server's user may not be allowed into this process's working directory.
        wrapped.current_dir("/");
        wrapped
    } else {
        std::mem::replace(command, Command::new("true"))
    };
    command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()))
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}
