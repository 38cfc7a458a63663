//! Server commands (INFO, CONFIG, COMMAND, CLIENT), compared with redis-server.
