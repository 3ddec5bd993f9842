mod harness_selftest;
