//! Geohash arithmetic as Redis does it, so that GEOADD stores the same
//! sorted-set scores and GEOPOS/GEODIST/GEOHASH print the same digits.
//!
//! A position is a 52-bit score: 26 bits of latitude (over Redis's
//! Web-Mercator limits ±85.05112878) and 26 bits of longitude (±180),
//! interleaved with latitude in the even bits. Distances use the haversine
//! formula on a sphere of radius 6372797.560856 m. Every formula keeps
//! Redis's order of floating-point operations, and the trigonometry comes
//! from the same C library, so results agree to the last bit.
//!
//! Searches cover the target shape with the geohash cell of the centre at a
//! step chosen from the radius, plus its eight neighbours (some dropped when
//! the shape cannot reach them), each cell being one score range.

use std::cmp::Ordering;
use std::f64::consts::PI;

pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
/// Bits per coordinate of a stored score.
pub const STEP_MAX: u8 = 26;
pub const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;
const D_R: f64 = PI / 180.0;

fn deg_rad(d: f64) -> f64 {
    d * D_R
}

fn rad_deg(r: f64) -> f64 {
    r / D_R
}

/// A geohash of `step` bits per coordinate. `step == 0` marks an unused
/// neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

const LON_RANGE: Range = Range {
    min: LON_MIN,
    max: LON_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The cell a hash names.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub lon: Range,
    pub lat: Range,
}

/// Spreads the 32 bits of `v` over the even bits of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of `x` into a u32.
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    ((x | (x >> 16)) & 0xffff_ffff) as u32
}

/// C's conversion of a double to `uint64_t` on x86-64 (what Redis does to
/// a score before decoding it), defined here for every input.
pub fn c_double_to_u64(x: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if x >= TWO63 {
        c_double_to_i64(x - TWO63) as u64 ^ (1 << 63)
    } else {
        c_double_to_i64(x) as u64
    }
}

/// C's conversion of a double to `long long` on x86-64: out of range (or
/// NaN) gives i64::MIN.
pub fn c_double_to_i64(x: f64) -> i64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() || !(-TWO63..TWO63).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

/// Encodes a position with `step` bits per coordinate over the given
/// ranges; None outside the ranges or Redis's WGS84 limits.
pub fn encode(lon_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Hash> {
    if step > 32
        || step == 0
        || lat_range.max - lat_range.min == 0.0
        || lon_range.max - lon_range.min == 0.0
    {
        return None;
    }
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < lon_range.min || lon > lon_range.max {
        return None;
    }
    let mut lat_off = (lat - lat_range.min) / (lat_range.max - lat_range.min);
    let mut lon_off = (lon - lon_range.min) / (lon_range.max - lon_range.min);
    lat_off *= (1u64 << step) as f64;
    lon_off *= (1u64 << step) as f64;
    Some(Hash {
        bits: spread(lat_off as u32) | (spread(lon_off as u32) << 1),
        step,
    })
}

/// The hash of a position over Redis's ranges at `step`.
pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Hash> {
    encode(LON_RANGE, LAT_RANGE, lon, lat, step)
}

/// The sorted-set score GEOADD stores for a position (the caller checked
/// the limits).
pub fn score(lon: f64, lat: f64) -> f64 {
    encode_wgs84(lon, lat, STEP_MAX).map_or(0, align52) as f64
}

/// A hash's bits moved to the top of 52 bits (a score).
pub fn align52(h: Hash) -> u64 {
    h.bits << (52 - u32::from(h.step) * 2)
}

/// The cell of a hash over Redis's ranges.
pub fn decode(h: Hash) -> Area {
    let lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    let lon_scale = LON_RANGE.max - LON_RANGE.min;
    let ilat = squash(h.bits);
    let ilon = squash(h.bits >> 1);
    let cells = (1u64 << h.step) as f64;
    Area {
        lat: Range {
            min: LAT_RANGE.min + (f64::from(ilat) / cells) * lat_scale,
            max: LAT_RANGE.min + (f64::from(ilat.wrapping_add(1)) / cells) * lat_scale,
        },
        lon: Range {
            min: LON_RANGE.min + (f64::from(ilon) / cells) * lon_scale,
            max: LON_RANGE.min + (f64::from(ilon.wrapping_add(1)) / cells) * lon_scale,
        },
    }
}

/// The position a sorted-set score stands for: the centre of its cell,
/// clamped to the limits.
pub fn decode_score(score: f64) -> (f64, f64) {
    let area = decode(Hash {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    });
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// GEOHASH's 11-character standard geohash of a score (re-encoded over
/// latitude ±90; the 11th character stands for bits Redis does not keep).
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let r = (
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
    );
    let bits = encode(r.0, r.1, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
    let mut out = [ALPHABET[0]; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

/// Distance along a meridian between two latitudes.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in metres.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: the meridian distance, cheaper and what Redis returns.
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// What a search covers: a circle or an axis-aligned box around a centre.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Radius in the request's unit.
    Circle { radius: f64 },
    /// Width and height in the request's unit.
    Box { width: f64, height: f64 },
}

#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub lon: f64,
    pub lat: f64,
    pub shape: Shape,
    /// Metres per unit of the request.
    pub to_meters: f64,
}

impl Search {
    /// [min lon, min lat, max lon, max lat] around the shape.
    fn bounds(&self) -> [f64; 4] {
        let (h, w) = match self.shape {
            Shape::Circle { radius } => (self.to_meters * radius, self.to_meters * radius),
            Shape::Box { width, height } => (
                self.to_meters * (height / 2.0),
                self.to_meters * (width / 2.0),
            ),
        };
        let lat_delta = rad_deg(h / EARTH_RADIUS_M);
        let lon_delta_top = rad_deg(w / EARTH_RADIUS_M / deg_rad(self.lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(w / EARTH_RADIUS_M / deg_rad(self.lat - lat_delta).cos());
        let (lo, hi) = if self.lat < 0.0 {
            (self.lon - lon_delta_bottom, self.lon + lon_delta_bottom)
        } else {
            (self.lon - lon_delta_top, self.lon + lon_delta_top)
        };
        [lo, self.lat - lat_delta, hi, self.lat + lat_delta]
    }

    /// The distance in metres to (lon, lat) if that point is inside the shape.
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.shape {
            Shape::Circle { radius } => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= radius * self.to_meters).then_some(d)
            }
            Shape::Box { width, height } => {
                let (w, h) = (width * self.to_meters, height * self.to_meters);
                if lat_distance(lat, self.lat) > h / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > w / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// The cells to scan, in Redis's order (centre, N, S, E, W, NE, NW, SE,
    /// SW), unused ones with step 0.
    pub fn cells(&self) -> [Hash; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let radius_m = match self.shape {
            Shape::Circle { radius } => radius,
            Shape::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.to_meters;
        let mut step = estimate_step(radius_m, self.lat);
        let at = |step| {
            let h = encode_wgs84(self.lon, self.lat, step).unwrap_or_default();
            (h, neighbours(h), decode(h))
        };
        let (mut hash, mut n, mut area) = at(step);
        // A neighbour too small to reach the edge of the shape: one step
        // coarser.
        let too_small = decode(n[0]).lat.max < max_lat
            || decode(n[1]).lat.min > min_lat
            || decode(n[2]).lon.max < max_lon
            || decode(n[3]).lon.min > min_lon;
        if step > 1 && too_small {
            step -= 1;
            (hash, n, area) = at(step);
        }
        let [mut north, mut south, mut east, mut west, mut ne, mut nw, mut se, mut sw] = n;
        if step >= 2 {
            let zero = Hash::default();
            if area.lat.min < min_lat {
                (south, sw, se) = (zero, zero, zero);
            }
            if area.lat.max > max_lat {
                (north, ne, nw) = (zero, zero, zero);
            }
            if area.lon.min < min_lon {
                (west, sw, nw) = (zero, zero, zero);
            }
            if area.lon.max > max_lon {
                (east, se, ne) = (zero, zero, zero);
            }
        }
        [hash, north, south, east, west, ne, nw, se, sw]
    }
}

/// The step whose cells are about the size of the radius (coarser near
/// the poles).
fn estimate_step(mut range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_m < MERCATOR_MAX {
        range_m *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const EVEN: u64 = 0x5555_5555_5555_5555;

/// Moves a cell one step along the coordinate whose bits are `mine` (ODD:
/// longitude, EVEN: latitude), wrapping around: the coordinate's bits are
/// incremented or decremented across the gaps of the other's.
fn step_cell(h: &mut Hash, d: i8, mine: u64) {
    let other = !mine;
    let shift = 64 - u32::from(h.step) * 2;
    let own = h.bits & mine;
    let fill = other >> shift;
    let own = if d > 0 {
        own.wrapping_add(fill + 1)
    } else {
        (own | fill).wrapping_sub(fill + 1)
    };
    h.bits = (own & (mine >> shift)) | (h.bits & other);
}

/// N, S, E, W, NE, NW, SE, SW of a cell (wrapping around the edges).
fn neighbours(h: Hash) -> [Hash; 8] {
    let at = |dlon: i8, dlat: i8| {
        let mut n = h;
        if dlon != 0 {
            step_cell(&mut n, dlon, ODD);
        }
        if dlat != 0 {
            step_cell(&mut n, dlat, EVEN);
        }
        n
    };
    [
        at(0, 1),
        at(0, -1),
        at(1, 0),
        at(-1, 0),
        at(1, 1),
        at(-1, 1),
        at(1, -1),
        at(-1, -1),
    ]
}

/// The score range [min, max) of the points inside a cell.
pub fn score_range(h: Hash) -> (f64, f64) {
    let min = align52(h);
    let max = align52(Hash {
        bits: h.bits.wrapping_add(1),
        step: h.step,
    });
    (min as f64, max as f64)
}

/// Orders `v` so that positions `lo..=hi` hold what a full sort would put
/// there, the way Redis's partial quicksort does it (Bentley and McIlroy's
/// three-way quicksort: median-of-three or ninther pivot, insertion sort
/// below 7 elements, recursing only into parts that overlap `lo..=hi`).
/// Equal elements end up in the order that algorithm leaves them, which is
/// what Redis replies when COUNT cuts a sorted search short.
pub fn partial_sort<T>(v: &mut [T], lo: usize, hi: usize, cmp: &impl Fn(&T, &T) -> Ordering) {
    sort_part(v, 0, v.len(), lo, hi, cmp);
}

/// `partial_sort` of the `n` elements from `base` (positions absolute).
fn sort_part<T>(
    v: &mut [T],
    mut base: usize,
    mut n: usize,
    lo: usize,
    hi: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
) {
    let outside =
        |base: usize, n: usize| (lo < base && hi < base) || (lo >= base + n && hi >= base + n);
    let med3 = |v: &[T], a: usize, b: usize, c: usize| {
        if cmp(&v[a], &v[b]).is_lt() {
            if cmp(&v[b], &v[c]).is_lt() {
                b
            } else if cmp(&v[a], &v[c]).is_lt() {
                c
            } else {
                a
            }
        } else if cmp(&v[b], &v[c]).is_gt() {
            b
        } else if cmp(&v[a], &v[c]).is_lt() {
            a
        } else {
            c
        }
    };
    loop {
        if n < 7 {
            for m in base + 1..base + n {
                let mut l = m;
                while l > base && cmp(&v[l - 1], &v[l]).is_gt() {
                    v.swap(l, l - 1);
                    l -= 1;
                }
            }
            return;
        }
        let mut pm = base + n / 2;
        if n > 7 {
            let (mut pl, mut pn) = (base, base + n - 1);
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d);
                pm = med3(v, pm - d, pm, pm + d);
                pn = med3(v, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, pl, pm, pn);
        }
        v.swap(base, pm);
        // [base] pivot, [base+1, pa) equal, [pa, pb) less, (pc, pd] greater,
        // (pd, end) equal.
        let (mut pa, mut pb) = (base + 1, base + 1);
        let (mut pc, mut pd) = (base + n - 1, base + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[base]);
                if c.is_gt() {
                    break;
                }
                if c.is_eq() {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[base]);
                if c.is_lt() {
                    break;
                }
                if c.is_eq() {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let end = base + n;
        let r = (pa - base).min(pb - pa);
        for i in 0..r {
            v.swap(base + i, pb - r + i);
        }
        let r = (pd - pc).min(end - pd - 1);
        for i in 0..r {
            v.swap(pb + i, end - r + i);
        }
        let less = pb - pa;
        if less > 1 && !outside(base, less) {
            sort_part(v, base, less, lo, hi, cmp);
        }
        let greater = pd - pc;
        if greater > 1 && !outside(end - greater, greater) {
            base = end - greater;
            n = greater;
            continue;
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn partial_sort_orders_the_requested_positions(
            mut v in proptest::collection::vec(0u8..20, 0..300),
            a in 0usize..300,
            b in 0usize..300,
        ) {
            let mut want = v.clone();
            want.sort();
            let (lo, hi) = (a.min(b), a.max(b));
            partial_sort(&mut v, lo, hi, &|x: &u8, y: &u8| x.cmp(y));
            let end = (hi + 1).min(v.len());
            if lo < end {
                proptest::prop_assert_eq!(&v[lo..end], &want[lo..end]);
            }
        }
    }

    #[test]
    fn interleave_round_trips() {
        for v in [0u32, 1, 0xdead_beef, u32::MAX, 1 << 26] {
            assert_eq!(squash(spread(v)), v);
            assert_eq!(squash(spread(v) << 1 >> 1), v);
        }
    }

    #[test]
    fn palermo_has_redis_score() {
        // GEOADD Sicily 13.361389 38.115556 Palermo; ZSCORE: 3479099956230698
        assert_eq!(score(13.361389, 38.115556), 3_479_099_956_230_698.0);
        assert_eq!(&geohash_string(3_479_099_956_230_698.0), b"sqc8b49rny0");
        let (lon, lat) = decode_score(3_479_099_956_230_698.0);
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
    }

    #[test]
    fn conversions_follow_c() {
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
        assert_eq!(c_double_to_u64(f64::INFINITY), 0);
        assert_eq!(c_double_to_i64(1e300), i64::MIN);
        assert_eq!(c_double_to_u64(3.0), 3);
    }
}
