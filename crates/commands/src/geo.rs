//! Geo commands: GEOADD, GEOPOS, GEODIST, GEOHASH, GEORADIUS,
//! GEORADIUSBYMEMBER (and their _RO forms), GEOSEARCH and GEOSEARCHSTORE.
//! Positions are sorted-set members scored with Redis's 52-bit geohash
//! (`damselfly_core::geo`), so the sorted-set commands see them too.

use crate::args::{eq, int, lossy, parse_score};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::sorted_set::{after_write, limits, store};
use crate::table::{
    Command,
    Keys::{GeoStore, Range},
};
use damselfly_core::geo::{self, Search, Shape};
use damselfly_core::zset::ZSet;
use damselfly_protocol::{Args, Reply};
use damselfly_storage::typed;
use damselfly_storage::{Entry, Value};

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "geoadd",
        -5,
        "write denyoom",
        Range(1, 1, 1),
        "@write @geo @slow",
        "geo",
        "3.2.0",
        geoadd
    ),
    cmd!(
        "geopos",
        -2,
        "readonly",
        Range(1, 1, 1),
        "@read @geo @slow",
        "geo",
        "3.2.0",
        geopos
    ),
    cmd!(
        "geodist",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @geo @slow",
        "geo",
        "3.2.0",
        geodist
    ),
    cmd!(
        "geohash",
        -2,
        "readonly",
        Range(1, 1, 1),
        "@read @geo @slow",
        "geo",
        "3.2.0",
        geohash
    ),
    cmd!(
        "georadius",
        -6,
        "write denyoom",
        GeoStore(6),
        "@write @geo @slow",
        "geo",
        "3.2.0",
        georadius
    ),
    cmd!(
        "georadius_ro",
        -6,
        "readonly",
        Range(1, 1, 1),
        "@read @geo @slow",
        "geo",
        "3.2.10",
        georadius_ro
    ),
    cmd!(
        "georadiusbymember",
        -5,
        "write denyoom",
        GeoStore(5),
        "@write @geo @slow",
        "geo",
        "3.2.0",
        georadiusbymember
    ),
    cmd!(
        "georadiusbymember_ro",
        -5,
        "readonly",
        Range(1, 1, 1),
        "@read @geo @slow",
        "geo",
        "3.2.10",
        georadiusbymember_ro
    ),
    cmd!(
        "geosearch",
        -7,
        "readonly",
        Range(1, 1, 1),
        "@read @geo @slow",
        "geo",
        "6.2.0",
        geosearch
    ),
    cmd!(
        "geosearchstore",
        -8,
        "write denyoom",
        Range(1, 2, 1),
        "@write @geo @slow",
        "geo",
        "6.2.0",
        geosearchstore
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

/// A longitude, latitude pair at `args[i..i + 2]`, inside Redis's limits.
fn lon_lat(args: &Args, i: usize) -> CmdResult<(f64, f64)> {
    let lon = parse_score(arg(args, i)).ok_or(CmdError::NotFloat)?;
    let lat = parse_score(arg(args, i + 1)).ok_or(CmdError::NotFloat)?;
    if !(geo::LON_MIN..=geo::LON_MAX).contains(&lon)
        || !(geo::LAT_MIN..=geo::LAT_MAX).contains(&lat)
    {
        return Err(CmdError::GeoLonLat(lon.to_bits(), lat.to_bits()));
    }
    Ok((lon, lat))
}

/// Metres per unit: m, km, ft or mi.
fn unit(s: &[u8]) -> CmdResult<f64> {
    if eq(s, "m") {
        Ok(1.0)
    } else if eq(s, "km") {
        Ok(1000.0)
    } else if eq(s, "ft") {
        Ok(0.3048)
    } else if eq(s, "mi") {
        Ok(1609.34)
    } else {
        Err(CmdError::GeoUnit)
    }
}

/// A non-negative number, with the error naming `what` when it is not one.
fn dimension(s: &[u8], what: &'static str) -> CmdResult<f64> {
    parse_score(s).ok_or(CmdError::GeoNotNumeric(what))
}

/// `radius unit` at `args[i..i + 2]`: (radius, metres per unit).
fn radius(args: &Args, i: usize) -> CmdResult<(f64, f64)> {
    let r = dimension(arg(args, i), "radius")?;
    if r < 0.0 {
        return Err(CmdError::GeoRadiusNegative);
    }
    Ok((r, unit(arg(args, i + 1))?))
}

/// `width height unit` at `args[i..i + 3]`.
fn bybox(args: &Args, i: usize) -> CmdResult<(f64, f64, f64)> {
    let w = dimension(arg(args, i), "width")?;
    let h = dimension(arg(args, i + 1), "height")?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::GeoBoxNegative);
    }
    Ok((w, h, unit(arg(args, i + 2))?))
}

/// A coordinate as Redis prints it (`%.17Lf` without trailing zeros): a
/// bulk string in RESP2, a double in RESP3.
fn reply_coord(r: &mut Reply, d: f64) {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" {
        s = "0".into();
    }
    if r.is_resp3() {
        r.raw(b",");
        r.raw(s.as_bytes());
        r.raw(b"\r\n");
    } else {
        r.bulk(s.as_bytes());
    }
}

/// A distance with four decimals, always a bulk string.
fn reply_distance(r: &mut Reply, d: f64) {
    r.bulk(format!("{d:.4}").as_bytes());
}

/// The sorted set at `key` (counting a hit or miss), WRONGTYPE for others.
fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a ZSet>> {
    let (db, now) = (ctx.db(), ctx.now);
    Ok(typed::read::<ZSet>(ctx.shard(key), db, key, now)?)
}

// ---------------------------------------------------------------- GEOADD

/// GEOADD key [NX|XX] [CH] longitude latitude member [longitude latitude member ...]
fn geoadd(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut i = 2;
    while i < args.len() {
        let o = arg(args, i);
        if eq(o, "nx") {
            nx = true;
        } else if eq(o, "xx") {
            xx = true;
        } else if eq(o, "ch") {
            ch = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = args.len() - i;
    if !rest.is_multiple_of(3) || (nx && xx) || rest == 0 {
        return Err(CmdError::Syntax);
    }
    let mut items = Vec::with_capacity(rest / 3);
    for j in (i..args.len()).step_by(3) {
        let (lon, lat) = lon_lat(args, j)?;
        items.push((geo::score(lon, lat), arg(args, j + 2)));
    }
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let limits = limits(ctx);
    let shard = ctx.shard(key);
    let exists = typed::write::<ZSet>(shard, db, key, now)?.is_some();
    let (mut added, mut updated) = (0i64, 0i64);
    if exists || !xx {
        if !exists {
            let z = ZSet::with_hint(1, items[0].1.len(), limits);
            shard.put(db, Entry::new(key, Value::ZSet(Box::new(z)), 0));
        }
        if let Some(z) = typed::write::<ZSet>(shard, db, key, now)? {
            for &(score, member) in &items {
                match z.score(member) {
                    Some(_) if nx => {}
                    Some(cur) => {
                        if cur != score {
                            z.insert(member, score, limits);
                            updated += 1;
                        }
                    }
                    None if xx => {}
                    None => {
                        z.insert(member, score, limits);
                        added += 1;
                    }
                }
            }
        }
        if added + updated > 0 || !exists {
            after_write(shard, db, key, "zadd");
        }
    }
    ctx.reply.int(if ch { added + updated } else { added });
    Ok(())
}

// ---------------------------------------------------------------- reads

/// The scores of the members named from argument 2 on (None if absent).
fn member_scores(ctx: &mut Ctx, args: &Args) -> CmdResult<Vec<Option<f64>>> {
    Ok(match read(ctx, arg(args, 1))? {
        Some(z) => args.iter().skip(2).map(|m| z.score(m)).collect(),
        None => vec![None; args.len() - 2],
    })
}

/// GEOPOS key [member [member ...]]
fn geopos(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    ctx.reply.array(scores.len());
    for s in scores {
        match s {
            Some(score) => {
                let (lon, lat) = geo::decode_score(score);
                ctx.reply.array(2);
                reply_coord(ctx.reply, lon);
                reply_coord(ctx.reply, lat);
            }
            None => ctx.reply.null_array(),
        }
    }
    Ok(())
}

/// GEOHASH key [member [member ...]]
fn geohash(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    ctx.reply.array(scores.len());
    for s in scores {
        match s {
            Some(score) => ctx.reply.bulk(&geo::geohash_string(score)),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
fn geodist(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let to_meters = match args.len() {
        5 => unit(arg(args, 4))?,
        n if n > 5 => return Err(CmdError::Syntax),
        _ => 1.0,
    };
    let key = arg(args, 1);
    let pair = match read(ctx, key)? {
        Some(z) => z.score(arg(args, 2)).zip(z.score(arg(args, 3))),
        None => None,
    };
    match pair {
        Some((a, b)) => {
            let (lon1, lat1) = geo::decode_score(a);
            let (lon2, lat2) = geo::decode_score(b);
            reply_distance(ctx.reply, geo::distance(lon1, lat1, lon2, lat2) / to_meters);
        }
        None => ctx.reply.null(),
    }
    Ok(())
}

// ---------------------------------------------------------------- searches

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// GEORADIUS[_RO]: centre and radius from the arguments.
    Coords,
    /// GEORADIUSBYMEMBER[_RO]: centre from a member.
    Member,
    /// GEOSEARCH / GEOSEARCHSTORE: FROM... and BY... options.
    Search,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A point found by a search.
struct Found {
    member: Vec<u8>,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// GEORADIUS key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]
fn georadius(ctx: &mut Ctx, args: &Args) -> CmdResult {
    search_generic(ctx, args, 1, Variant::Coords, true, false)
}

/// GEORADIUS_RO key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]
fn georadius_ro(ctx: &mut Ctx, args: &Args) -> CmdResult {
    search_generic(ctx, args, 1, Variant::Coords, false, false)
}

/// GEORADIUSBYMEMBER key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]
fn georadiusbymember(ctx: &mut Ctx, args: &Args) -> CmdResult {
    search_generic(ctx, args, 1, Variant::Member, true, false)
}

/// GEORADIUSBYMEMBER_RO key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]
fn georadiusbymember_ro(ctx: &mut Ctx, args: &Args) -> CmdResult {
    search_generic(ctx, args, 1, Variant::Member, false, false)
}

/// GEOSEARCH key FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius unit|BYBOX width height unit [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
fn geosearch(ctx: &mut Ctx, args: &Args) -> CmdResult {
    search_generic(ctx, args, 1, Variant::Search, false, false)
}

/// GEOSEARCHSTORE destination source FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius unit|BYBOX width height unit [ASC|DESC] [COUNT count [ANY]] [STOREDIST]
fn geosearchstore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    search_generic(ctx, args, 2, Variant::Search, false, true)
}

/// The score of `member` in the source, as a centre.
fn member_centre(ctx: &mut Ctx, key: &[u8], member: &[u8]) -> CmdResult<(f64, f64)> {
    let (db, now) = (ctx.db(), ctx.now);
    let score = typed::write::<ZSet>(ctx.shard(key), db, key, now)?.and_then(|z| z.score(member));
    score
        .map(geo::decode_score)
        .ok_or(CmdError::GeoMemberUnknown)
}

/// Redis's georadiusGeneric: every search command's parsing, checks (in
/// Redis's order), search and reply or store.
fn search_generic(
    ctx: &mut Ctx,
    args: &Args,
    src_idx: usize,
    variant: Variant,
    can_store: bool,
    search_store: bool,
) -> CmdResult {
    let src = arg(args, src_idx);
    let exists = read(ctx, src)?.is_some();
    let mut centre = None;
    let mut shape = None;
    let mut to_meters = 1.0;
    let mut store_key: Option<&[u8]> = None;
    let base = match variant {
        Variant::Coords => {
            centre = Some(lon_lat(args, 2)?);
            let (r, u) = radius(args, 4)?;
            (shape, to_meters) = (Some(Shape::Circle { radius: r }), u);
            6
        }
        Variant::Member if !exists => 5,
        Variant::Member => {
            centre = Some(member_centre(ctx, src, arg(args, 2))?);
            let (r, u) = radius(args, 3)?;
            (shape, to_meters) = (Some(Shape::Circle { radius: r }), u);
            5
        }
        Variant::Search if search_store => {
            store_key = Some(arg(args, 1));
            3
        }
        Variant::Search => 2,
    };
    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox_seen) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count = 0i64;
    let mut storedist = false;
    let search = variant == Variant::Search;
    let mut i = base;
    while i < args.len() {
        let a = arg(args, i);
        let left = args.len() - i - 1;
        if eq(a, "withdist") {
            withdist = true;
        } else if eq(a, "withhash") {
            withhash = true;
        } else if eq(a, "withcoord") {
            withcoord = true;
        } else if eq(a, "any") {
            any = true;
        } else if eq(a, "asc") {
            sort = Sort::Asc;
        } else if eq(a, "desc") {
            sort = Sort::Desc;
        } else if eq(a, "count") && left >= 1 {
            count = int(arg(args, i + 1))?;
            if count <= 0 {
                return Err(CmdError::GeoCountNotPositive);
            }
            i += 1;
        } else if (eq(a, "store") || eq(a, "storedist")) && left >= 1 && can_store {
            store_key = Some(arg(args, i + 1));
            storedist = eq(a, "storedist");
            i += 1;
        } else if eq(a, "storedist") && search_store {
            storedist = true;
        } else if eq(a, "frommember") && left >= 1 && search && !fromloc {
            if exists {
                centre = Some(member_centre(ctx, src, arg(args, i + 1))?);
            }
            frommember = true;
            i += 1;
        } else if eq(a, "fromlonlat") && left >= 2 && search && !frommember {
            centre = Some(lon_lat(args, i + 1)?);
            fromloc = true;
            i += 2;
        } else if eq(a, "byradius") && left >= 2 && search && !bybox_seen {
            let (r, u) = radius(args, i + 1)?;
            (shape, to_meters) = (Some(Shape::Circle { radius: r }), u);
            byradius = true;
            i += 2;
        } else if eq(a, "bybox") && left >= 3 && search && !byradius {
            let (w, h, u) = bybox(args, i + 1)?;
            (shape, to_meters) = (
                Some(Shape::Box {
                    width: w,
                    height: h,
                }),
                u,
            );
            bybox_seen = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if store_key.is_some() && (withdist || withhash || withcoord) {
        return Err(CmdError::GeoStoreWith(if search_store {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        }));
    }
    if search && !(frommember || fromloc) {
        return Err(CmdError::GeoNeedFrom(lossy(arg(args, 0))));
    }
    if search && !(byradius || bybox_seen) {
        return Err(CmdError::GeoNeedBy(lossy(arg(args, 0))));
    }
    if any && count == 0 {
        return Err(CmdError::GeoAnyNeedsCount);
    }
    let (Some((lon, lat)), Some(shape), true) = (centre, shape, exists) else {
        // No source: nothing found.
        return match store_key {
            Some(dest) => {
                store(ctx, dest, &[], "georadiusstore");
                ctx.reply.int(0);
                Ok(())
            }
            None => {
                ctx.reply.array(0);
                Ok(())
            }
        };
    };
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let search = Search {
        lon,
        lat,
        shape,
        to_meters,
    };
    let limit = if any { count as usize } else { 0 };
    let (db, now) = (ctx.db(), ctx.now);
    let mut found = match typed::write::<ZSet>(ctx.shard(src), db, src, now)? {
        Some(z) => find(z, &search, limit),
        None => Vec::new(),
    };
    if found.is_empty() && store_key.is_none() {
        ctx.reply.array(0);
        return Ok(());
    }
    let returned = match usize::try_from(count) {
        Ok(c) if c > 0 && c < found.len() => c,
        _ => found.len(),
    };
    let by_dist = |a: &Found, b: &Found| a.dist.total_cmp(&b.dist);
    let by_dist_desc = |a: &Found, b: &Found| b.dist.total_cmp(&a.dist);
    // Redis sorts everything with glibc's qsort (a stable merge sort), or
    // only the first COUNT with its partial quicksort, whose order of ties
    // `partial_sort` reproduces.
    match (sort, returned == found.len()) {
        (Sort::None, _) => {}
        (Sort::Asc, true) => found.sort_by(by_dist),
        (Sort::Desc, true) => found.sort_by(by_dist_desc),
        (Sort::Asc, false) => geo::partial_sort(&mut found, 0, returned - 1, &by_dist),
        (Sort::Desc, false) => geo::partial_sort(&mut found, 0, returned - 1, &by_dist_desc),
    }
    found.truncate(returned);
    for f in &mut found {
        f.dist /= to_meters;
    }
    match store_key {
        Some(dest) => {
            let items: Vec<(Vec<u8>, f64)> = found
                .into_iter()
                .map(|f| (f.member, if storedist { f.dist } else { f.score }))
                .collect();
            let event = if search_store {
                "geosearchstore"
            } else {
                "georadiusstore"
            };
            let n = store(ctx, dest, &items, event);
            ctx.reply.int(n as i64);
        }
        None => {
            let options = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
            let r = &mut *ctx.reply;
            r.array(found.len());
            for f in &found {
                if options > 0 {
                    r.array(options + 1);
                }
                r.bulk(&f.member);
                if withdist {
                    reply_distance(r, f.dist);
                }
                if withhash {
                    r.int(geo::c_double_to_i64(f.score));
                }
                if withcoord {
                    r.array(2);
                    reply_coord(r, f.lon);
                    reply_coord(r, f.lat);
                }
            }
        }
    }
    Ok(())
}

/// The members inside the search's shape, cell by cell in Redis's order;
/// with `limit` (ANY) it stops once that many are found.
fn find(z: &ZSet, search: &Search, limit: usize) -> Vec<Found> {
    let mut out = Vec::new();
    let cells = search.cells();
    let mut last: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.step == 0 {
            continue;
        }
        // Large radii make neighbours coincide: skip a cell equal to the
        // one scanned just before (Redis never compares with the centre).
        if let Some(l) = last.filter(|&l| l > 0) {
            if cells[l] == *cell {
                continue;
            }
        }
        if limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geo::score_range(*cell);
        let lo = z.prefix_len(|s, _| s < min);
        let hi = z.prefix_len(|s, _| s < max);
        let mut done = false;
        z.range(lo, hi, false, |m, s| {
            if done {
                return;
            }
            let (lon, lat) = geo::decode_score(s);
            if let Some(dist) = search.contains(lon, lat) {
                out.push(Found {
                    member: m.to_vec(),
                    score: s,
                    lon,
                    lat,
                    dist,
                });
            }
            if limit > 0 && out.len() >= limit {
                done = true;
            }
        });
        last = Some(i);
    }
    out
}
