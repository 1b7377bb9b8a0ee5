"""The code of the state machine's Lambda Task states, one module per function.

`certrelay.tasks.<name>` holds the callables that functions/<name>/app.py's routing table names
(state name → callable; see certrelay.routing). Each callable takes the state's payload and
what the handler built for this invocation (clients, settings, its logger, `now`), and returns
the small JSON-able answer the state keeps.
"""
