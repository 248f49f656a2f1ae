#!/usr/bin/env python3
"""A webhook receiver for the alert tests: answers CODE (default 500, with
BODY) to the first FAILS requests, 200 to the others, and appends each
request as a JSON line (status answered, Authorization header, body) to
LOG. 127.0.0.1 only; exits after 60 s at most.

    webhook.py PORT FAILS LOG [CODE [BODY]]"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

port, fails, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fail_code = int(sys.argv[4]) if len(sys.argv) > 4 else 500
fail_body = sys.argv[5].encode() if len(sys.argv) > 5 else b""
seen = {"n": 0}


class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen["n"] += 1
        failing = seen["n"] <= fails
        code = fail_code if failing else 200
        with open(log, "a") as f:
            f.write(json.dumps({"code": code, "auth": self.headers.get("Authorization"),
                                "path": self.path, "body": json.loads(body)}) + "\n")
        answer = fail_body if failing else b""
        self.send_response(code)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *a):
        pass


srv = HTTPServer(("127.0.0.1", port), H)
threading.Timer(60, srv.shutdown).start()
srv.serve_forever()
