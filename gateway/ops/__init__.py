"""Operations: the command line, queue and status commands, systemd, metrics, logs."""
