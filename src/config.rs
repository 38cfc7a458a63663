//! Start-up options, from (lowest to highest precedence) a Redis config
//! file, `DFLY_<flag>` environment variables, and the command line
//! (`--flagfile FILE` reads more flags in its place).
//!
//! Forms: Dragonfly's `--flag value`, `--flag=value`, `--noflag` for
//! booleans, human sizes (`8gb`); Redis's `redis-server /path/redis.conf
//! [--directive value ...]` and its directive names (`maxmemory-policy`,
//! `databases`). Every flag maps onto a CONFIG parameter, so CONFIG GET shows
//! what start-up set.
//!
//! Invariant: nothing is silently ignored. An unknown flag, environment
//! variable or directive stops start-up naming it; a bad value stops it with
//! one line naming the flag; a flag that is accepted but not acted on yet
//! adds a start-up warning saying so.

use damselfly_commands::config::parse_memory;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Bool,
    Port,
    Count,
    Size,
    Text,
    Cron,
}

/// One start-up flag: its Dragonfly name, the Redis directive that means the
/// same (if any), its value type, the CONFIG parameter it sets, and why it is
/// not acted on yet (if it is not).
struct Flag {
    name: &'static str,
    redis: &'static str,
    ty: Ty,
    param: &'static str,
    not_yet: &'static str,
}

const fn f(
    name: &'static str,
    redis: &'static str,
    ty: Ty,
    param: &'static str,
    not_yet: &'static str,
) -> Flag {
    Flag {
        name,
        redis,
        ty,
        param,
        not_yet,
    }
}

static FLAGS: &[Flag] = &[
    f("port", "port", Ty::Port, "port", ""),
    f("bind", "bind", Ty::Text, "bind", ""),
    f("requirepass", "requirepass", Ty::Text, "requirepass", ""),
    f("maxmemory", "maxmemory", Ty::Size, "maxmemory", ""),
    f(
        "maxmemory_policy",
        "maxmemory-policy",
        Ty::Text,
        "maxmemory-policy",
        "",
    ),
    f("dir", "dir", Ty::Text, "dir", ""),
    f("dbfilename", "dbfilename", Ty::Text, "dbfilename", ""),
    f("snapshot_cron", "", Ty::Cron, "snapshot_cron", ""),
    f("save", "save", Ty::Text, "save", ""),
    f(
        "appendonly",
        "appendonly",
        Ty::Text,
        "appendonly",
        "there is no append-only file",
    ),
    f("df_snapshot_format", "", Ty::Bool, "df_snapshot_format", ""),
    f("cache_mode", "", Ty::Bool, "cache_mode", ""),
    f("hz", "hz", Ty::Count, "hz", ""),
    f(
        "keys_output_limit",
        "",
        Ty::Count,
        "keys_output_limit",
        "KEYS returns every match",
    ),
    f("dbnum", "databases", Ty::Count, "databases", ""),
    f("proactor_threads", "", Ty::Count, "proactor_threads", ""),
    f("logtostderr", "", Ty::Bool, "logtostderr", ""),
    f(
        "primary_port_http_enabled",
        "",
        Ty::Bool,
        "primary_port_http_enabled",
        "",
    ),
    f("admin_port", "", Ty::Port, "admin_port", ""),
    f("admin_bind", "", Ty::Text, "admin_bind", ""),
    f("admin_nopass", "", Ty::Bool, "admin_nopass", ""),
    f("memcached_port", "", Ty::Port, "memcached_port", ""),
    f("tls", "", Ty::Bool, "tls", ""),
    f("tls_port", "tls-port", Ty::Port, "tls-port", ""),
    f(
        "tls_cert_file",
        "tls-cert-file",
        Ty::Text,
        "tls-cert-file",
        "",
    ),
    f("tls_key_file", "tls-key-file", Ty::Text, "tls-key-file", ""),
    f(
        "tls_ca_cert_file",
        "tls-ca-cert-file",
        Ty::Text,
        "tls-ca-cert-file",
        "",
    ),
    f("maxclients", "maxclients", Ty::Count, "maxclients", ""),
    f("timeout", "timeout", Ty::Count, "timeout", ""),
    f(
        "tcp_keepalive",
        "tcp-keepalive",
        Ty::Count,
        "tcp-keepalive",
        "",
    ),
    f("replicaof", "replicaof", Ty::Text, "replicaof", ""),
    f("slaveof", "slaveof", Ty::Text, "replicaof", ""),
    f("masterauth", "masterauth", Ty::Text, "masterauth", ""),
    f("masteruser", "masteruser", Ty::Text, "masteruser", ""),
    f(
        "cluster_mode",
        "",
        Ty::Text,
        "cluster_mode",
        "cluster mode is not built yet",
    ),
    f("aclfile", "aclfile", Ty::Text, "aclfile", ""),
    f("unixsocket", "unixsocket", Ty::Text, "unixsocket", ""),
    f(
        "protected_mode",
        "protected-mode",
        Ty::Text,
        "protected-mode",
        "",
    ),
];

/// Environment variables people use for Dragonfly that are not `DFLY_` plus
/// a flag name.
const ENV_ALIASES: &[(&str, &str)] = &[("DFLY_PASSWORD", "requirepass")];

#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub bind: String,
    pub dir: Option<PathBuf>,
    pub threads: usize,
    pub dbnum: usize,
    pub logtostderr: bool,
    pub tls: bool,
    /// Redis's `tls-port`: a TLS listener beside (or, with port 0, instead
    /// of) the plain one.
    pub tls_port: u16,
    pub tls_cert_file: String,
    pub tls_key_file: String,
    pub tls_ca_cert_file: String,
    pub admin_port: u16,
    pub admin_bind: String,
    pub admin_nopass: bool,
    pub aclfile: String,
    /// `user` directives of a redis.conf, as written after `user`.
    pub users: Vec<String>,
    /// The redis.conf the server was started with (CONFIG REWRITE's target).
    pub config_file: Option<PathBuf>,
    /// CONFIG parameters and their start-up values, in the order given.
    pub params: Vec<(&'static str, String)>,
    /// Start-up warnings: flags accepted but not acted on yet.
    pub warnings: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 6379,
            bind: "0.0.0.0".into(),
            dir: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            dbnum: 16,
            logtostderr: false,
            tls: false,
            tls_port: 0,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_ca_cert_file: String::new(),
            admin_port: 0,
            admin_bind: String::new(),
            admin_nopass: false,
            aclfile: String::new(),
            users: Vec::new(),
            config_file: None,
            params: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// `maxmemory_policy`, `maxmemory-policy` and `MAXMEMORY-POLICY` are one name.
fn normal(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

fn find(name: &str) -> Option<&'static Flag> {
    let n = normal(name);
    FLAGS
        .iter()
        .find(|f| f.name == n || (!f.redis.is_empty() && normal(f.redis) == n))
}

fn bad(flag: &str, v: &str) -> String {
    format!("ERROR: illegal value '{v}' specified for flag '{flag}'")
}

fn parse_bool(flag: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "t" | "y" | "on" => Ok(true),
        "false" | "no" | "0" | "f" | "n" | "off" => Ok(false),
        _ => Err(bad(flag, v)),
    }
}

impl Options {
    /// Applies one flag's value (already split from its name).
    fn apply(&mut self, flag: &'static Flag, shown: &str, v: &str) -> Result<(), String> {
        let stored = match flag.ty {
            Ty::Bool => {
                let b = parse_bool(shown, v)?;
                match flag.name {
                    "logtostderr" => self.logtostderr = b,
                    "tls" => self.tls = b,
                    "admin_nopass" => self.admin_nopass = b,
                    _ => {}
                }
                if b { "true" } else { "false" }.to_string()
            }
            Ty::Port => {
                let p: u16 = v.parse().map_err(|_| bad(shown, v))?;
                match flag.name {
                    "port" => self.port = p,
                    "admin_port" => self.admin_port = p,
                    "tls_port" => self.tls_port = p,
                    "memcached_port" if p != 0 => return Err(
                        "ERROR: flag 'memcached_port': the memcached protocol is not supported yet"
                            .into(),
                    ),
                    _ => {}
                }
                p.to_string()
            }
            Ty::Count => {
                let n: u64 = v.parse().map_err(|_| bad(shown, v))?;
                match flag.name {
                    "proactor_threads" if n > 0 => {
                        self.threads = usize::try_from(n).map_err(|_| bad(shown, v))?
                    }
                    "dbnum" => {
                        if n == 0 || n > 1024 {
                            return Err(format!(
                                "ERROR: flag '{shown}' must be between 1 and 1024"
                            ));
                        }
                        self.dbnum = n as usize;
                    }
                    _ => {}
                }
                n.to_string()
            }
            Ty::Size => parse_memory(v).ok_or_else(|| bad(shown, v))?.to_string(),
            Ty::Cron => {
                if !v.is_empty() && damselfly_commands::persist::Cron::parse(v).is_none() {
                    return Err(format!(
                        "ERROR: flag '{shown}': '{v}' is not a cron expression (minute hour day month weekday)"
                    ));
                }
                v.to_string()
            }
            Ty::Text => {
                match flag.name {
                    "bind" => self.bind = v.split_whitespace().next().unwrap_or("").to_string(),
                    "dir" => self.dir = Some(PathBuf::from(v)),
                    "tls_cert_file" => self.tls_cert_file = v.to_string(),
                    "tls_key_file" => self.tls_key_file = v.to_string(),
                    "tls_ca_cert_file" => self.tls_ca_cert_file = v.to_string(),
                    "admin_bind" => self.admin_bind = v.to_string(),
                    "aclfile" => self.aclfile = v.to_string(),
                    "replicaof" | "slaveof"
                        if !v.is_empty()
                            && damselfly_commands::replicaof::parse_replicaof(v).is_none() =>
                    {
                        return Err(format!(
                            "ERROR: flag '{shown}': '{v}' is not 'host port' or 'host:port'"
                        ))
                    }
                    "cluster_mode" if !matches!(v, "" | "no") => {
                        return Err(format!(
                            "ERROR: flag '{shown}': cluster mode '{v}' is not supported yet"
                        ))
                    }
                    _ => {}
                }
                v.to_string()
            }
        };
        let idle = match flag.ty {
            Ty::Bool | Ty::Port | Ty::Count => {
                matches!(stored.as_str(), "false" | "0")
                    || stored == "true" && flag.name == "df_snapshot_format"
            }
            _ => stored.is_empty(),
        };
        if !flag.not_yet.is_empty() && !idle {
            let w = format!(
                "flag '{shown}' is accepted but not acted on yet: {}",
                flag.not_yet
            );
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        self.params.retain(|(p, _)| *p != flag.param);
        self.params.push((flag.param, stored));
        Ok(())
    }

    /// A setting by name, from any source: a flag, else a CONFIG parameter
    /// (`hash-max-listpack-entries`), else an error naming it.
    fn set(&mut self, name: &str, v: &str, what: &str) -> Result<(), String> {
        if let Some(flag) = find(name) {
            return self.apply(flag, name, v);
        }
        match param_named(name) {
            Some(p) => {
                self.params.push((p.name, v.to_string()));
                Ok(())
            }
            None => Err(format!("ERROR: unknown {what} '{name}'")),
        }
    }

    fn set_flag(&mut self, name: &str, v: &str) -> Result<(), String> {
        self.set(name, v, "command line flag")
    }
}

/// The CONFIG parameter `name` spells (either spelling, either alias).
fn param_named(name: &str) -> Option<&'static damselfly_commands::config::Param> {
    damselfly_commands::config::PARAMS.iter().find(|p| {
        normal(p.name) == normal(name) || p.alias.is_some_and(|a| normal(a) == normal(name))
    })
}

/// Reads a Redis config file (directives, quoting, `include`) into `o`.
fn read_redis_conf(o: &mut Options, path: &Path, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!(
            "ERROR: include nesting too deep at {}",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("ERROR: cannot read config file {}: {e}", path.display()))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let words = damselfly_protocol::split_args(line.as_bytes())
            .ok_or_else(|| format!("ERROR: unbalanced quotes in config file at {}", at()))?;
        let words: Vec<String> = words
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let Some((name, args)) = words.split_first() else {
            continue;
        };
        directive(
            o,
            &name.to_ascii_lowercase(),
            args,
            depth,
            "config directive",
        )
        .map_err(|e| format!("{e} (at {})", at()))?;
    }
    Ok(())
}

/// One redis.conf directive (also the `--name value...` words after a
/// config file on the command line).
fn directive(
    o: &mut Options,
    name: &str,
    args: &[String],
    depth: usize,
    what: &str,
) -> Result<(), String> {
    match name {
        "include" => {
            for a in args {
                read_redis_conf(o, Path::new(a), depth + 1)?;
            }
            Ok(())
        }
        "user" => {
            o.users.push(args.join(" "));
            Ok(())
        }
        _ => o.set(name, &args.join(" "), what),
    }
}

/// Reads `--flagfile`: one flag a line (`--name=value`, `--name value` or
/// `--noname`), `#` comments.
fn read_flagfile(path: &str, out: &mut Vec<String>, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("ERROR: flagfile nesting too deep at {path}"));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("ERROR: cannot read flagfile {path}: {e}"))?;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once([' ', '=']) {
            Some((n, v)) if n == "--flagfile" || n == "-flagfile" => {
                read_flagfile(v.trim(), out, depth + 1)?
            }
            Some((n, v)) if line.as_bytes()[n.len()] == b' ' => {
                out.push(n.to_string());
                out.push(v.trim().to_string());
            }
            _ => out.push(line.to_string()),
        }
    }
    Ok(())
}

/// Expands `--flagfile FILE` in place.
fn expand_flagfiles(args: Vec<String>) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let path = match a.trim_start_matches('-').split_once('=') {
            Some(("flagfile", p)) if a.starts_with('-') => p.to_string(),
            None if a.starts_with('-') && a.trim_start_matches('-') == "flagfile" => it
                .next()
                .ok_or("ERROR: flag 'flagfile' is missing its argument")?,
            _ => {
                out.push(a);
                continue;
            }
        };
        read_flagfile(&path, &mut out, 0)?;
    }
    Ok(out)
}

/// Parses the environment's `DFLY_*` variables and then the command line.
pub fn parse(
    args: impl Iterator<Item = String>,
    env: impl Iterator<Item = (String, String)>,
) -> Result<Options, String> {
    let mut o = Options::default();
    let mut args: Vec<String> = args.collect();
    // Redis's form: the first argument is a config file, unless it is a flag.
    if let Some(first) = args.first().filter(|a| !a.starts_with('-')) {
        let path = PathBuf::from(first);
        read_redis_conf(&mut o, &path, 0)?;
        o.config_file = Some(std::fs::canonicalize(&path).unwrap_or(path));
        args.remove(0);
    }
    let mut env: Vec<(String, String)> = env.filter(|(k, _)| k.starts_with("DFLY_")).collect();
    env.sort();
    for (k, v) in env {
        let name = ENV_ALIASES.iter().find(|(a, _)| *a == k).map_or_else(
            || k["DFLY_".len()..].to_ascii_lowercase(),
            |(_, n)| n.to_string(),
        );
        if name == "flagfile" {
            let mut lines = Vec::new();
            read_flagfile(&v, &mut lines, 0)?;
            command_line(&mut o, lines)?;
            continue;
        }
        if find(&name).is_none() {
            return Err(format!("ERROR: unknown environment variable '{k}'"));
        }
        o.set_flag(&name, &v)?;
    }
    command_line(&mut o, expand_flagfiles(args)?)?;
    Ok(o)
}

fn command_line(o: &mut Options, args: Vec<String>) -> Result<(), String> {
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.next() {
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!("ERROR: unexpected argument '{arg}'"));
        };
        if let Some((name, v)) = body.split_once('=') {
            o.set_flag(name, v)?;
            continue;
        }
        let flag = find(body);
        // --noflag for a boolean; --flag alone for a boolean means true.
        if flag.is_none() {
            if let Some(f) = body.strip_prefix("no").and_then(find) {
                if f.ty == Ty::Bool {
                    o.apply(f, body, "false")?;
                    continue;
                }
            }
        }
        if flag.is_some_and(|f| f.ty == Ty::Bool)
            && it.peek().is_none_or(|n| parse_bool(body, n).is_err())
        {
            o.set_flag(body, "true")?;
            continue;
        }
        if flag.is_none() {
            // Redis's form after a config file: `--directive word...`.
            let mut words = Vec::new();
            while let Some(w) = it.next_if(|n| !n.starts_with("--")) {
                words.push(w);
            }
            directive(
                o,
                &body.to_ascii_lowercase(),
                &words,
                0,
                "command line flag",
            )?;
            continue;
        }
        let mut v = it
            .next()
            .ok_or_else(|| format!("ERROR: flag '{body}' is missing its argument"))?;
        // Redis's form takes several words (`--save 900 1 300 10`).
        while let Some(w) = it.next_if(|n| !n.starts_with("--")) {
            v.push(' ');
            v.push_str(&w);
        }
        o.set_flag(body, &v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Options, String> {
        parse(a.iter().map(|s| s.to_string()), std::iter::empty())
    }

    fn param(o: &Options, name: &str) -> Option<String> {
        o.params
            .iter()
            .rev()
            .find(|(p, _)| *p == name)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn both_flag_forms_parse() {
        let o = p(&["--port", "7000", "--bind=127.0.0.1", "--proactor_threads=2"]).unwrap();
        assert_eq!((o.port, o.bind.as_str(), o.threads), (7000, "127.0.0.1", 2));
    }

    #[test]
    fn unknown_and_bad_flags_are_named() {
        assert_eq!(
            p(&["--nope"]).unwrap_err(),
            "ERROR: unknown command line flag 'nope'"
        );
        assert!(p(&["--port=abc"]).unwrap_err().contains("'port'"));
        assert!(p(&["--maxmemory=lots"])
            .unwrap_err()
            .contains("'maxmemory'"));
        assert!(p(&["--snapshot_cron=0 2 * *"])
            .unwrap_err()
            .contains("'snapshot_cron'"));
        assert!(p(&["--snapshot_cron", "99 2 * * *"]).is_err());
    }

    #[test]
    fn sizes_booleans_and_negations() {
        let o = p(&[
            "--maxmemory=8gb",
            "--nologtostderr",
            "--cache_mode",
            "--tls=false",
        ])
        .unwrap();
        assert_eq!(param(&o, "maxmemory").as_deref(), Some("8589934592"));
        assert_eq!(param(&o, "cache_mode").as_deref(), Some("true"));
        assert!(!o.logtostderr && !o.tls);
        assert!(!o.warnings.iter().any(|w| w.contains("'maxmemory'")));
    }

    #[test]
    fn environment_loses_to_the_command_line() {
        let env = [
            ("DFLY_requirepass".to_string(), "env".to_string()),
            ("DFLY_port".to_string(), "7001".to_string()),
        ];
        let o = parse(
            ["--requirepass=cli".to_string()].into_iter(),
            env.into_iter(),
        )
        .unwrap();
        assert_eq!(param(&o, "requirepass").as_deref(), Some("cli"));
        assert_eq!(o.port, 7001);
        let e = parse(
            std::iter::empty(),
            [("DFLY_bogus".to_string(), "1".to_string())].into_iter(),
        )
        .unwrap_err();
        assert!(e.contains("DFLY_bogus"));
    }

    #[test]
    fn redis_options_after_a_flag_take_several_words() {
        let o = p(&["--save", "900", "1", "300", "10", "--port", "7002"]).unwrap();
        assert_eq!(param(&o, "save").as_deref(), Some("900 1 300 10"));
        assert_eq!(o.port, 7002);
        assert!(p(&["--port", "7000", "7001"]).is_err());
    }

    #[test]
    fn a_redis_conf_sets_parameters_including_stored_only_ones() {
        let path = std::env::temp_dir().join(format!("dfly-conf-{}.conf", std::process::id()));
        std::fs::write(
            &path,
            "hll-sparse-max-bytes 100\ndaemonize no\nsave \"\"\nuser alice on >p ~*\n",
        )
        .unwrap();
        let o = p(&[path.to_str().unwrap()]).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(param(&o, "hll-sparse-max-bytes").as_deref(), Some("100"));
        assert_eq!(param(&o, "save").as_deref(), Some(""));
        assert_eq!(o.users, vec!["alice on >p ~*".to_string()]);
        assert_eq!(param(&o, "daemonize").as_deref(), Some("no"));
    }

    #[test]
    fn cron_expressions() {
        use damselfly_commands::persist::Cron;
        for ok in [
            "0 2 * * *",
            "*/5 * * * *",
            "0 0 1,15 * MON-FRI",
            "0 0 2 * * *",
        ] {
            assert!(Cron::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "0 2 * *", "61 * * * *", "*/0 * * * *", "a b c d e"] {
            assert!(Cron::parse(bad).is_none(), "{bad}");
        }
    }
}
