"""I/O wiring: settings, Faust app and topics, Redis twin store, dead letters, CLI."""
