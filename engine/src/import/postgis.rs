//! Layers in a PostgreSQL + PostGIS database: a `[[layer]]`'s `file` may be a
//! `postgresql://` URL, read through GDAL's PostgreSQL driver, with `layer` naming the table
//! (`roads`, or `schema.roads`). Several planners can then load one shared city model.
//!
//! The URL is `postgresql://[USER@]HOST[:PORT]/DATABASE[?KEY=VALUE&...]` (`postgres://` too),
//! the query keys being libpq's (`sslmode=require`, `connect_timeout=5`). A password does not
//! belong in a scene file: libpq takes it from `PGPASSWORD` or `~/.pgpass`.

/// Whether a scene's `file` names a database rather than a file.
pub fn is_database(file: &str) -> bool {
    file.starts_with("postgresql://") || file.starts_with("postgres://")
}

/// GDAL's name for the database at `url`: `PG:` and its [`conninfo`].
pub fn gdal_name(url: &str) -> Result<String, String> {
    conninfo(url).map(|c| format!("PG:{c}"))
}

/// libpq's connection string for the database at `url` (`host=… port=… dbname=… user=…`), or
/// what is wrong with the URL. The run store connects with it too (see [`crate::store`]).
pub fn conninfo(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| format!("'{url}' is not a postgresql:// URL"))?;
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, db) = main
        .split_once('/')
        .ok_or_else(|| format!("'{url}' names no database (postgresql://HOST/DATABASE)"))?;
    if db.is_empty() || db.contains('/') {
        return Err(format!(
            "'{url}': '{db}' is not a database name (postgresql://HOST/DATABASE)"
        ));
    }
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, _)) if u.contains(':') => {
            return Err(format!(
                "'{url}' holds a password: a scene file is no place for one; give it in PGPASSWORD or ~/.pgpass"
            ));
        }
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, rest) = v6
                .split_once(']')
                .ok_or_else(|| format!("'{url}': an IPv6 host needs its closing ']'"))?;
            (h, rest.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err(format!("'{url}' names no host"));
    }
    let mut parts = vec![format!("host={}", quote(host))];
    if let Some(p) = port {
        let n = p
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("'{url}': port '{p}' is not a number from 1 to 65535"))?;
        parts.push(format!("port={n}"));
    }
    parts.push(format!("dbname={}", quote(&unescape(db)?)));
    if let Some(u) = user {
        parts.push(format!("user={}", quote(&unescape(u)?)));
    }
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("'{url}': '{kv}' is not KEY=VALUE"))?;
        if k == "password" {
            return Err(format!(
                "'{url}' holds a password: give it in PGPASSWORD or ~/.pgpass"
            ));
        }
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("'{url}': '{k}' is not a connection parameter"));
        }
        parts.push(format!("{k}={}", quote(&unescape(v)?)));
    }
    Ok(parts.join(" "))
}

/// A libpq connection-string value, quoted when it needs to be.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\']) {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `%XX` escapes of a URL part.
fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("'{s}': a '%' not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8 once unescaped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_gdal_names_and_bad_ones_say_why() {
        assert_eq!(
            gdal_name("postgresql://planner@db.city:5433/city?sslmode=require").unwrap(),
            "PG:host=db.city port=5433 dbname=city user=planner sslmode=require"
        );
        assert_eq!(
            gdal_name("postgres://127.0.0.1/my%20city").unwrap(),
            "PG:host=127.0.0.1 dbname='my city'"
        );
        assert_eq!(
            gdal_name("postgresql://[::1]:5432/city").unwrap(),
            "PG:host=::1 port=5432 dbname=city"
        );
        for (bad, why) in [
            ("postgresql://u:secret@h/db", "password"),
            ("postgresql://h/db?password=x", "password"),
            ("postgresql://h", "no database"),
            ("postgresql://h/", "not a database name"),
            ("postgresql://h:0/db", "port '0'"),
            ("postgresql:///db", "no host"),
            ("postgresql://h/db?x", "KEY=VALUE"),
            ("postgresql://h/db?a b=1", "not a connection parameter"),
            ("postgresql://h/d%zz", "two hex digits"),
        ] {
            let e = gdal_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(is_database("postgres://h/db") && !is_database("data/roads.geojson"));
    }
}
