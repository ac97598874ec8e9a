"""Generated code; see scripts/gen_stubs.py. Do not edit."""
