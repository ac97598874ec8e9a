//! `value_wire::check_value` on any bytes: it never panics, and whatever prost decodes as a
//! `google.protobuf.Value` it accepts too (prost's own nesting bound is the stricter one).
//! A lowered depth bound only ever refuses more, and then for depth.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use switchyard_proto::value_wire::{check_value, check_value_within};

fuzz_target!(|data: &[u8]| {
    let ours = check_value(data);
    if prost_types::Value::decode(data).is_ok() {
        assert!(ours.is_ok(), "prost decodes it, value_wire refused it: {ours:?}");
    }
    let shallow = check_value_within(data, 3);
    match (&ours, &shallow) {
        (Err(_), Ok(())) => panic!("a lower bound accepted what the full bound refused"),
        (Ok(()), Err(e)) => assert!(e.is_too_deep(), "refused under a lower bound for {e}"),
        _ => {}
    }
});
