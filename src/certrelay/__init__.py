"""certrelay: ACM certificate lifecycle events, triaged and told to the owners."""

__version__ = "0.1.0"
