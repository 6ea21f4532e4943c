//! Resource identifiers. They are drawn from a random source passed in by the caller, so that
//! tests and simulations are reproducible.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A random lowercase alphanumeric identifier with a resource prefix, e.g. `i-3k9x...`.
pub fn new_id(prefix: &str, len: usize, rng: &mut impl Rng) -> String {
    let mut s = String::with_capacity(prefix.len() + 1 + len);
    s.push_str(prefix);
    s.push('-');
    for _ in 0..len {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

pub fn instance_id(rng: &mut impl Rng) -> String {
    new_id("i", 20, rng)
}

pub fn command_id(rng: &mut impl Rng) -> String {
    new_id("c", 24, rng)
}

pub fn invocation_id(rng: &mut impl Rng) -> String {
    new_id("t", 24, rng)
}

pub fn deployment_set_id(rng: &mut impl Rng) -> String {
    new_id("ds", 20, rng)
}

pub fn host_id(rng: &mut impl Rng) -> String {
    new_id("h", 16, rng)
}

/// A system event id, `e-` and 20 alphanumerics as ECS shows them.
pub fn event_id(rng: &mut impl Rng) -> String {
    new_id("e", 20, rng)
}

pub fn vpc_id(rng: &mut impl Rng) -> String {
    new_id("vpc", 21, rng)
}

pub fn vswitch_id(rng: &mut impl Rng) -> String {
    new_id("vsw", 21, rng)
}

pub fn security_group_id(rng: &mut impl Rng) -> String {
    new_id("sg", 20, rng)
}

pub fn rule_id(rng: &mut impl Rng) -> String {
    new_id("sgr", 20, rng)
}

pub fn eip_id(rng: &mut impl Rng) -> String {
    new_id("eip", 20, rng)
}

pub fn eni_id(rng: &mut impl Rng) -> String {
    new_id("eni", 20, rng)
}

pub fn disk_id(rng: &mut impl Rng) -> String {
    new_id("d", 20, rng)
}

pub fn snapshot_id(rng: &mut impl Rng) -> String {
    new_id("s", 20, rng)
}

/// An account's image: `m-` and 20 characters, as ECS names custom images.
pub fn image_id(rng: &mut impl Rng) -> String {
    new_id("m", 20, rng)
}

pub fn key_pair_id(rng: &mut impl Rng) -> String {
    new_id("kp", 20, rng)
}

/// `n` in base 36 with the id alphabet (`0`, `1`, ... `z`, `10`, ...).
pub fn base36(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(ALPHABET[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A secret for a join token or a host credential: 32 alphanumerics.
pub fn secret(rng: &mut impl Rng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..32).map(|_| A[rng.gen_range(0..A.len())] as char).collect()
}

pub fn account_id(rng: &mut impl Rng) -> String {
    // Alibaba account ids are 16 decimal digits.
    let mut s = String::with_capacity(16);
    s.push(char::from(b'1' + rng.gen_range(0..9u8)));
    for _ in 0..15 {
        s.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    s
}

/// An AccessKeyId: `LTAI` followed by 20 alphanumerics, the shape the SDKs expect.
pub fn access_key_id(rng: &mut impl Rng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::from("LTAI");
    for _ in 0..20 {
        s.push(A[rng.gen_range(0..A.len())] as char);
    }
    s
}

/// An AccessKeySecret: 30 alphanumerics.
pub fn access_key_secret(rng: &mut impl Rng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..30).map(|_| A[rng.gen_range(0..A.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ids_are_deterministic_for_a_seed() {
        let mut a = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = rand::rngs::StdRng::seed_from_u64(7);
        assert_eq!(instance_id(&mut a), instance_id(&mut b));
        let id = instance_id(&mut a);
        assert!(id.starts_with("i-") && id.len() == 22);
        assert_eq!(account_id(&mut a).len(), 16);
        assert!(access_key_id(&mut a).starts_with("LTAI"));
    }
}
