//! LUKS2 header rewriter for hostile-host tests (see tests/hostile.rs).
