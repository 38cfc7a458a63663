//! Start-up options: Dragonfly-style flags (`--flag value`, `--flag=value`,
//! `--noflag` for booleans). An unknown flag stops start-up with a message
//! naming it.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub bind: String,
    pub dir: Option<PathBuf>,
    pub dbfilename: String,
    pub threads: usize,
    pub dbnum: usize,
    pub hz: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 6379,
            bind: "0.0.0.0".into(),
            dir: None,
            dbfilename: "dump.rdb".into(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            dbnum: 16,
            hz: 10,
        }
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("ERROR: illegal value '{v}' specified for flag '{flag}'"))
}

pub fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.peekable();
    while let Some(arg) = it.next() {
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!(
                "ERROR: unexpected argument '{arg}' (config files are not supported yet)"
            ));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .ok_or_else(|| format!("ERROR: flag '{name}' is missing its argument")),
            }
        };
        match name.as_str() {
            "port" => o.port = number("port", &value("port")?)?,
            "bind" => o.bind = value("bind")?,
            "dir" => o.dir = Some(PathBuf::from(value("dir")?)),
            "dbfilename" => o.dbfilename = value("dbfilename")?,
            "proactor_threads" => {
                let n: usize = number("proactor_threads", &value("proactor_threads")?)?;
                if n > 0 {
                    o.threads = n;
                }
            }
            "dbnum" | "databases" => {
                o.dbnum = number("dbnum", &value("dbnum")?)?;
                if o.dbnum == 0 || o.dbnum > 1024 {
                    return Err("ERROR: dbnum must be between 1 and 1024".into());
                }
            }
            "hz" => o.hz = number("hz", &value("hz")?)?,
            _ => return Err(format!("ERROR: unknown command line flag '{name}'")),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Options, String> {
        parse(a.iter().map(|s| s.to_string()))
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
    }
}
