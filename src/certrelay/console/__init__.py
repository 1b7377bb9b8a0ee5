"""The console: `certrelay local up`'s pages, the state machine drawn from the ASL, and the
execution history view `certrelay history` shares (it also reads deployed executions)."""
