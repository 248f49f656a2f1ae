#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hapwatch::fuzz::runtime_api(data));
