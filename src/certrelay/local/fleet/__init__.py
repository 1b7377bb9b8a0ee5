"""The demo fleet and its servers: what a local environment starts with (certificates, profiles,
owners) and the sandboxed servers the SSM document installs on."""
