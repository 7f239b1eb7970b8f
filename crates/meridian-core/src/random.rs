//! Random identifiers (deployment ids, generated physical names, temporary keys) from the
//! system's random source. Not for secrets: when `/dev/urandom` cannot be read, the bytes fall
//! back to the clock and the process id, which is enough for uniqueness.

use std::io::Read;

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = nanos ^ ((std::process::id() as u64) << 32);
        for (i, x) in buf.iter_mut().enumerate() {
            *x = (seed >> ((i % 8) * 8)) as u8 ^ i as u8;
        }
    }
}

/// `len` random characters from `A-Z0-9`.
pub fn alphanumeric(len: usize) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut b = vec![0u8; len];
    fill(&mut b);
    b.iter().map(|x| ALPHA[*x as usize % ALPHA.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_have_the_length_and_alphabet_asked_for_and_differ() {
        let a = super::alphanumeric(12);
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()), "{a}");
        assert_ne!(a, super::alphanumeric(12));
    }
}
