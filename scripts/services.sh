#!/bin/sh
# Start, stop or inspect the local Kafka broker and Redis: up|down|restart|status.
exec "$(dirname "$0")/../.venv/bin/python" -c 'import sys; from stream.services import main_services; sys.exit(main_services(sys.argv[1:]))' "$@"
