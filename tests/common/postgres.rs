//! A PostgreSQL + PostGIS server for a test: Debian's `postgresql-15-postgis-3`, initialised in
//! a temporary folder and listening on a free loopback port, stopped when dropped. As root
//! (CI), the server runs as the `postgres` system user, which PostgreSQL requires.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server with one database, `city`, that has PostGIS.
pub struct Postgres {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// The newest PostgreSQL's binaries on this machine.
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    dirs.pop().expect(
        "these tests need PostgreSQL with PostGIS (Debian: apt-get install postgresql-15-postgis-3; .ci/run installs it)",
    )
}

/// The `postgres` user's uid and gid, when this process is root.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd.lines().find(|l| l.starts_with("postgres:")).expect(
        "as root, PostgreSQL runs as the 'postgres' user, which its Debian package creates",
    );
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().unwrap(), f[3].parse().unwrap()))
}

fn command(program: &Path, user: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c.env_remove("PGDATA").env("LC_ALL", "C");
    c
}

fn check(c: &mut Command, what: &str) {
    let o = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Postgres {
    /// Initialise and start a server, and create the `city` database with PostGIS.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let user = server_user();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        for d in [&data, &sockets] {
            std::fs::create_dir(d).unwrap();
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
            }
        }
        // The server user must reach its folders inside ours.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        check(
            command(&bin.join("initdb"), user)
                .arg("-D")
                .arg(&data)
                .args(["-U", "citytwin", "--auth=trust", "-E", "UTF8", "--no-sync"]),
            "initdb",
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = command(&bin.join("postgres"), user)
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", sockets.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let pg = Postgres {
            child,
            port,
            bin,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg.sql("postgres", "CREATE DATABASE city");
        pg.sql("city", "CREATE EXTENSION postgis");
        pg
    }

    /// Run `sql` in `db` with psql (waiting while the server finishes starting).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = Command::new(self.bin.join("psql"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "citytwin",
                    "-X",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                ])
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-d", db, "-c", sql])
                .output()
                .expect("psql runs");
            if o.status.success() {
                return String::from_utf8_lossy(&o.stdout).trim().to_string();
            }
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            let starting = err.contains("starting up") || err.contains("Connection refused");
            assert!(starting && Instant::now() < deadline, "psql {sql}: {err}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `city` database's URL, as a scene names it.
    pub fn url(&self) -> String {
        format!("postgresql://citytwin@127.0.0.1:{}/city", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        // SAFETY: kill with a child's pid we own.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let _ = self.child.wait();
    }
}
