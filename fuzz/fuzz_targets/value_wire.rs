//! `value_wire::check_value` on any bytes: it never panics, and whatever it accepts prost
//! decodes as a `google.protobuf.Value` too (unless prost's own, stricter, nesting bound
//! stops it). A lowered depth bound only ever refuses more, and then for depth.
//!
//! Not claimed the other way: prost skips an unknown field written with the proto2 group
//! wire types (3/4), which `value_wire` refuses ("unsupported wire type"; found by this
//! target, input `5b 5c`) — no proto3 encoder writes groups, so the stricter reading stays.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use switchyard_proto::value_wire::{check_value, check_value_within};

fuzz_target!(|data: &[u8]| {
    let ours = check_value(data);
    if ours.is_ok()
        && let Err(e) = prost_types::Value::decode(data)
    {
        assert!(e.to_string().contains("recursion limit"), "value_wire accepted what prost refuses: {e}");
    }
    let shallow = check_value_within(data, 3);
    match (&ours, &shallow) {
        (Err(_), Ok(())) => panic!("a lower bound accepted what the full bound refused"),
        (Ok(()), Err(e)) => assert!(e.is_too_deep(), "refused under a lower bound for {e}"),
        _ => {}
    }
});
