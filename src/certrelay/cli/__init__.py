"""`certrelay`, the command line: the demo, local runs, `local up` / `local send`, `history`."""
