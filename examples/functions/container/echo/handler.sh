#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Serves one HTTP request on stdin/stdout; start.sh runs it once per
# connection through busybox nc. Routes:
#   GET  /health  200 "ok"
#   ANY  /echo    200 {"body", "headers" (NVCF-* only), "path", "method"};
#                 a body with "sleep": s waits s seconds first
#   POST /fail    500 {"error": "requested failure"}
# The reply closes the connection, so clients never reuse it.

cr=$(printf '\r')

# Turns stdin into the inside of a JSON string literal.
esc() {
	awk 'BEGIN { RS = "\001"; ORS = "" }
	{
		gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t")
		gsub(/\r/, "\\r"); gsub(/\n/, "\\n"); print
	}'
}

# reply STATUS REASON CONTENT-TYPE BODY
reply() {
	len=$(printf '%s' "$4" | wc -c)
	printf 'HTTP/1.1 %s %s\r\nContent-Type: %s\r\nContent-Length: %s\r\n' \
		"$1" "$2" "$3" "$len"
	printf 'Connection: close\r\n\r\n%s' "$4"
}

IFS= read -r line || exit 0
line=${line%"$cr"}
method=${line%% *}
rest=${line#* }
path=${rest%% *}

length=0
expect=
headers=
while IFS= read -r h; do
	h=${h%"$cr"}
	[ -z "$h" ] && break
	name=${h%%:*}
	value=${h#*:}
	value=${value# }
	lname=$(printf '%s' "$name" | tr 'A-Z' 'a-z')
	case "$lname" in
	content-length) length=$value ;;
	expect) expect=$value ;;
	nvcf-*)
		[ -n "$headers" ] && headers="$headers, "
		headers="$headers\"$(printf '%s' "$name" | esc)\": "
		headers="$headers\"$(printf '%s' "$value" | esc)\""
		;;
	esac
done

case "$expect" in
100-continue|100-Continue) printf 'HTTP/1.1 100 Continue\r\n\r\n' ;;
esac

# The trailing x keeps the body's own trailing newlines.
body=
if [ "$length" -gt 0 ] 2>/dev/null; then
	body=$(head -c "$length"; echo x)
	body=${body%x}
fi

echo "echo: $method $path ${length} bytes" >&2

case "$path" in
/health|/health\?*)
	reply 200 OK text/plain ok
	;;
/fail|/fail\?*)
	reply 500 'Internal Server Error' application/json \
		'{"error": "requested failure"}'
	;;
/echo|/echo/*|/echo\?*)
	s=$(printf '%s' "$body" |
		sed -n 's/.*"sleep"[[:space:]]*:[[:space:]]*\([0-9.]*\).*/\1/p')
	[ -n "$s" ] && sleep "$s"
	reply 200 OK application/json "{\"body\": \"$(printf '%s' "$body" |
		esc)\", \"headers\": {$headers}, \"path\": \"$(printf '%s' \
		"$path" | esc)\", \"method\": \"$method\"}"
	;;
*)
	reply 404 'Not Found' application/json \
		"{\"error\": \"no route for $(printf '%s' "$path" | esc)\"}"
	;;
esac
