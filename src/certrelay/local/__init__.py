"""The local engine: the SAM stack on an embedded AWS (moto), in one process."""
