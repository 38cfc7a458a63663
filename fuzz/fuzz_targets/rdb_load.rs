//! Feeds arbitrary bytes to the RDB loaders: as a DUMP payload (with and
//! without a valid trailer, so the object decoder is reached), and as a
//! whole RDB file (with and without a valid checksum). Neither may panic,
//! and whatever a payload decodes to must encode and decode back to itself.
#![no_main]

use damselfly_persistence::{dump, file, Limits, CRC64};
use libfuzzer_sys::fuzz_target;

fn with_trailer(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let crc = CRC64.checksum(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = dump::verify(data).map(|()| dump::restore(data, &limits));
    let payload = with_trailer(data, 10);
    if dump::verify(&payload).is_ok() {
        if let Ok(v) = dump::restore(&payload, &limits) {
            let again = dump::dump(&v, &limits);
            let back = dump::restore(&again, &limits).expect("our own payload loads");
            assert_eq!(back, v);
        }
    }
    let _ = file::load(data, &limits, 16, 0, |_| Ok(()));
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(data);
    f.push(0xFF);
    let crc = CRC64.checksum(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    let _ = file::load(&f, &limits, 16, 0, |_| Ok(()));
});
