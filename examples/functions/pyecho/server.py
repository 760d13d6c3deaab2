#!/usr/bin/python3
"""Test function for the process runtime: echoes requests back as JSON.

Listens on 127.0.0.1:$PORT (HTTP/1.1, keep-alive). Routes:
  GET  /health           200 "ok"
  ANY  /echo, /echo/...  200 {"body", "headers", "path", "method", "pid"};
       /tlb/...          a JSON body with "sleep": s waits s seconds first
  ANY  /raw              200 the request body byte for byte, as
                         application/octet-stream, with header X-Echo-Pid;
                         header X-Echo-Sleep: s waits s seconds first
  POST /fail             500 {"error": "requested failure"}
  GET  /env              200 the process environment as JSON
  GET  /seen?id=ID       200 {"id", "count"}: how many requests with
                         NVCF-REQID ID this process received
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_seen = {}
_seen_lock = threading.Lock()


def _note_request_id(headers):
	request_id = headers.get("NVCF-REQID")
	# Logged on arrival, before any sleep, so tests can see a request that
	# is still running (http.server logs only after the response).
	sys.stderr.write("pyecho: started %s\n" % (request_id or "-"))
	sys.stderr.flush()
	if not request_id:
		return
	with _seen_lock:
		_seen[request_id] = _seen.get(request_id, 0) + 1


class Handler(BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	server_version = "pyecho/1"

	def log_message(self, fmt, *args):
		sys.stderr.write("pyecho: %s %s\n" % (self.address_string(),
						   fmt % args))

	def _read_body(self):
		length = int(self.headers.get("Content-Length") or 0)
		if length > 0:
			return self.rfile.read(length)
		if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
			data = b""
			while True:
				line = self.rfile.readline().strip()
				size = int(line.split(b";")[0], 16)
				if size == 0:
					self.rfile.readline()
					return data
				data += self.rfile.read(size)
				self.rfile.readline()
		return b""

	def _send(self, status, obj, ctype="application/json"):
		if isinstance(obj, (bytes, str)):
			data = obj if isinstance(obj, bytes) else obj.encode()
		else:
			data = json.dumps(obj).encode()
		self.send_response(status)
		self.send_header("Content-Type", ctype)
		self.send_header("Content-Length", str(len(data)))
		self.end_headers()
		if self.command != "HEAD":
			self.wfile.write(data)

	def _route(self):
		url = urlsplit(self.path)
		path = url.path
		body = self._read_body()
		if path == "/health":
			self._send(200, "ok", "text/plain")
			return
		if path == "/env" and self.command == "GET":
			self._send(200, dict(os.environ))
			return
		if path == "/seen" and self.command == "GET":
			request_id = parse_qs(url.query).get("id", [""])[0]
			with _seen_lock:
				count = _seen.get(request_id, 0)
			self._send(200, {"id": request_id, "count": count})
			return
		if path == "/raw":
			_note_request_id(self.headers)
			try:
				time.sleep(float(self.headers.get("X-Echo-Sleep") or 0))
			except ValueError:
				pass
			self.send_response(200)
			self.send_header("Content-Type", "application/octet-stream")
			self.send_header("Content-Length", str(len(body)))
			self.send_header("X-Echo-Pid", str(os.getpid()))
			self.end_headers()
			if self.command != "HEAD":
				self.wfile.write(body)
			return
		if path == "/fail":
			_note_request_id(self.headers)
			self._send(500, {"error": "requested failure"})
			return
		if path == "/echo" or path.startswith("/echo/") or \
				path.startswith("/tlb/"):
			_note_request_id(self.headers)
			text = body.decode("utf-8", "replace")
			try:
				parsed = json.loads(text) if text else None
			except ValueError:
				parsed = None
			if isinstance(parsed, dict) and "sleep" in parsed:
				try:
					time.sleep(float(parsed["sleep"]))
				except (TypeError, ValueError):
					pass
			self._send(200, {
				"body": text,
				"headers": {k: v for k, v in self.headers.items()},
				"path": self.path,
				"method": self.command,
				"pid": os.getpid(),
			})
			return
		self._send(404, {"error": "no route for " + path})

	do_GET = _route
	do_POST = _route
	do_PUT = _route
	do_PATCH = _route
	do_DELETE = _route
	do_HEAD = _route
	do_OPTIONS = _route


class Server(ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True


def main():
	port = int(os.environ.get("PORT", "8000"))
	server = Server(("127.0.0.1", port), Handler)
	sys.stderr.write("pyecho: listening on 127.0.0.1:%d pid %d\n" %
			 (port, os.getpid()))
	sys.stderr.flush()
	try:
		server.serve_forever()
	except KeyboardInterrupt:
		pass
	return 0


if __name__ == "__main__":
	sys.exit(main())
