//! Parameter decoding: any query string or form body must decode or fail with an API error, and
//! every typed accessor must answer without panicking.
#![no_main]

use feiyun_openapi::params::{form_decode, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(pairs) = form_decode(text) else { return };
    let Ok(p) = Params::from_pairs(pairs) else { return };
    for name in ["Amount", "InstanceId", "Tag", "InstanceIds", "DryRun", "PageSize", "UserData"] {
        let _ = p.get(name);
        let _ = p.required(name);
        let _ = p.bool(name);
        let _ = p.int(name, 1, 100);
        let _ = p.list(name, 100);
        let _ = p.tags(name, 20);
        let _ = p.json_list(name, 100);
        let _ = p.string(name, 64);
        let _ = p.choice(name, &["a", "b"]);
    }
    let _ = feiyun_openapi::fingerprint("RunInstances", &p);
});
