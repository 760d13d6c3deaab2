#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Entry point of the echo test image: serves HTTP on $PORT (default 8000,
# the NVCF inference port) with one handler.sh per connection.
#
# nc runs in the background because a shell that is PID 1 only acts on
# SIGTERM through a trap, and a stop should not wait for the SIGKILL.
port=${PORT:-8000}
echo "echo: listening on port $port" >&2
nc -ll -p "$port" -e /echo/handler.sh &
server=$!
trap 'kill "$server" 2>/dev/null; echo "echo: stopping" >&2; exit 0' \
	TERM INT
wait "$server"
