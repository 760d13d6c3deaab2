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
  ANY  /stream           Server-Sent Events: with "Accept: text/event-stream"
                         a chunked text/event-stream of X-Stream-Events
                         events (default 5), X-Stream-Interval seconds
                         apart (default 0.2), each "id: N", "event: tick"
                         and "data: {"n": N, "of": COUNT}". Without that
                         Accept, the same events as one JSON response
                         {"events": [...]} once they are all made.
                         X-Stream-Bytes: n pads each data line to n bytes;
                         X-Stream-Head-Delay: s waits s seconds before the
                         head; X-Stream-Fail-After: n closes the connection
                         after n events without ending the stream.
"""

import json
import os
import socket
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


def _header_number(headers, name, default, kind=float):
	try:
		return kind(headers.get(name) or default)
	except ValueError:
		return default


def _wants_event_stream(headers):
	for item in (headers.get("Accept") or "").split(","):
		if item.split(";")[0].strip().lower() == "text/event-stream":
			return True
	return False


def _event(n, count, pad):
	data = json.dumps({"n": n, "of": count})
	if pad > len(data):
		data += " " * (pad - len(data))
	return "id: %d\nevent: tick\ndata: %s\n\n" % (n, data)


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

	def _stream(self):
		"""Serves /stream; see the module docstring."""
		request_id = self.headers.get("NVCF-REQID") or "-"
		count = _header_number(self.headers, "X-Stream-Events", 5, int)
		interval = _header_number(self.headers, "X-Stream-Interval", 0.2)
		pad = _header_number(self.headers, "X-Stream-Bytes", 0, int)
		fail_after = _header_number(self.headers, "X-Stream-Fail-After",
					    -1, int)
		_note_request_id(self.headers)
		time.sleep(_header_number(self.headers, "X-Stream-Head-Delay", 0))

		if not _wants_event_stream(self.headers):
			events = []
			for n in range(1, count + 1):
				events.append(_event(n, count, pad))
				time.sleep(interval)
			self._send(200, {"events": events})
			return

		self.send_response(200)
		self.send_header("Content-Type", "text/event-stream")
		self.send_header("Cache-Control", "no-cache")
		self.send_header("Transfer-Encoding", "chunked")
		self.send_header("X-Echo-Pid", str(os.getpid()))
		self.end_headers()
		self.wfile.flush()

		sent = 0
		try:
			for n in range(1, count + 1):
				if n > 1 and interval > 0:
					time.sleep(interval)
				if sent == fail_after:
					sys.stderr.write("pyecho: stream %s broken off "
							 "after %d events\n" %
							 (request_id, sent))
					sys.stderr.flush()
					self.close_connection = True
					self.connection.shutdown(socket.SHUT_RDWR)
					return
				data = _event(n, count, pad).encode()
				self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
				self.wfile.flush()
				sent += 1
			self.wfile.write(b"0\r\n\r\n")
			self.wfile.flush()
		except (BrokenPipeError, ConnectionResetError):
			sys.stderr.write("pyecho: stream %s closed by the client "
					 "after %d events\n" % (request_id, sent))
			sys.stderr.flush()
			self.close_connection = True
			return

		sys.stderr.write("pyecho: stream %s sent %d events\n" %
				 (request_id, sent))
		sys.stderr.flush()

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
		if path == "/stream":
			self._stream()
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
