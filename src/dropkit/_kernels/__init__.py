"""Private machinery: mask generation and mask application shared by the functional layer."""
